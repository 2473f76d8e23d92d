//! The integration suite: one binary, the real server on port 0.

mod support;

mod api_keys;
mod callback_refusals;
mod flow;
mod instances;
mod operations;
mod provider_faults;
mod proxy;
mod refresh;
mod revocation;
mod storage;
mod webhooks;
