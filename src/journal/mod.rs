//! The append-only journal of a run, written before the fact.
