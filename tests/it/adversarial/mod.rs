//! Attacks, one test each. Every attack ends in a clean refusal (a status
//! and a page or problem that says what happened in words), nothing stored
//! and nothing leaked (no token, secret, code or verifier in the answer).
//!
//! Attacks that other files already show are not repeated here: login CSRF,
//! callback replay, flow expiry, tampered and swapped flow cookies and `iss`
//! (callback_refusals.rs), the return_to list and connect-session reuse
//! (flow.rs), proxy escapes and header filtering (proxy.rs), the admin bearer
//! (refresh.rs). SECURITY.md maps every threat to its test.
//!
//! One file per kind of attack; `support` holds what several of them check
//! and send.

mod flow_attacks;
mod form_csrf;
mod hosts;
mod limits;
mod redirects;
mod reflection;
mod sessions_and_cookies;
mod slow_clients;
mod smuggling;
mod support;
