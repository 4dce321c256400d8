//! results.csv and results.json.
