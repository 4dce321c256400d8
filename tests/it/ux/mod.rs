//! What a new user meets first: closed pipes, config mistakes, help, completions, the files a
//! run leaves behind.

mod config;
mod help;
mod output;
mod pipe;
