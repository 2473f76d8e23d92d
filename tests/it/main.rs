//! The integration suite: one binary, the real server on port 0.

mod support;

mod admin;
mod admin_bearer;
mod adversarial;
mod api_key_guesses;
mod api_key_mode;
mod api_keys;
mod browser;
mod browser_pages;
mod callback_refusals;
mod cli;
mod connect_from_apps;
mod end_users;
mod events;
mod flow;
mod instances;
mod interop;
mod operations;
mod pacing;
mod properties;
mod provider_faults;
mod proxy;
mod proxy_retries;
mod refresh;
mod revocation;
mod slow_provider;
mod storage;
mod upkeep;
