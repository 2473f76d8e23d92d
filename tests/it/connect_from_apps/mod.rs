//! Connecting from inside an app: popup connect sessions, the session status
//! an app's page reads, and the OpenAPI document.

mod openapi;
mod script;
mod sessions;
