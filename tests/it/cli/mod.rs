//! The binary itself: exit statuses, `--help`, `gen-key`, the listen line,
//! SIGTERM, where settings come from, and what reaches its logs.
//!
//! Every run starts from an empty environment in an empty temporary folder,
//! so neither this machine's variables nor a `.env` lying around can leak in.
//!
//! `process` runs the binary; the other files are what it is asked to do.

mod exit_codes;
mod first_hour;
mod help_and_gen_key;
mod lifecycle;
mod logs;
mod process;
mod settings_sources;
