//! Connecting from inside an app: popup connect sessions, the session status
//! an app's page reads, the connect script, the OpenAPI document, and the
//! example app clicked through in a real browser across two origins.

mod in_the_browser;
mod openapi;
mod script;
mod sessions;
mod two_origins;

#[path = "../../../examples/spa/app.rs"]
mod spa;
