//! `--shard K/N` and `shotlist merge`: partitions of the examples, shards run against one
//! simulator and merged, refusals of foreign or hostile folders, and the deploy recipes.

mod ledger;
mod merge;
mod partition;
mod recipes;
