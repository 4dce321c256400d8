//! Templates: minijinja with strict undefined, no auto-escape, no clock, randomness or environment.
