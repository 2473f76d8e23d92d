//! The integration suite: one binary, the real server on port 0.

mod support;

mod callback_refusals;
mod flow;
mod provider_faults;
mod storage;
