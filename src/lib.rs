//! emailoctopus-connect lets the users of an app connect their EmailOctopus
//! account to it, and keeps that connection alive.
//!
//! A browser connects through the OAuth 2.0 authorization-code flow with PKCE
//! (`web`: `/auth` seals the pending flow into a cookie, `/callback` checks it
//! and exchanges the code through `oauth`), or by pasting an API key, which is
//! what EmailOctopus's public API v2 takes today. Either way `connections`
//! seals the credential with `crypto` (AES-256-GCM bound to the connection
//! id) and `store` keeps it in SQLite or Postgres. The app's backend then asks
//! `api` for a fresh access token, or sends its API calls through the proxy;
//! `connections` refreshes once per connection however many callers ask.
//! Without OAuth settings the server runs in API-key mode, which is all
//! EmailOctopus itself needs. `maintenance` keeps connections healthy in the
//! background through the same `connections` rules, and every change it
//! makes is recorded as an event in the outbox `events` delivers from. `sandbox` mounts a small
//! provider and a fake API so the whole flow can be tried with no account.
//! `app` wires it all together for the binary and the tests.

/// The routes for the app's backend, behind the admin bearer.
pub mod api;
/// `App::build` and `run`: the one start-up path.
pub mod app;
/// Token buckets by key, idle ones dropped: the proxy's pacing and the limit on refused API keys.
mod buckets;
/// Values parsed from untrusted input (ids, origins, return_to, hosts, API keys): holding one is the proof.
pub mod checked;
/// The one clock, movable in tests.
pub mod clock;
/// Settings from flags, the environment and `.env`, parsed into typed values.
pub mod config;
/// Connect sessions created by the app's backend: single use, and the status an app's page reads.
pub mod connect_sessions;
/// The credential rules (store, open, refresh once, revoke, delete, re-seal), and the overview operators see.
pub mod connections;
/// AEAD sealing with a rotating key ring; constant-time comparison; random tokens.
pub mod crypto;
/// The EmailOctopus API as this server calls it: key checks, and every proxied call.
mod emailoctopus_api;
/// Connection events: written with their change, delivered at least once, signed, readable in order.
pub mod events;
/// The one outbound HTTP client: redirects off, timeouts on, answers capped.
mod http_client;
/// Closing a connection so that an early answer is not lost to a reset.
mod lingering_close;
/// The background upkeep loop: refresh ahead, key checks, sweeps.
pub mod maintenance;
/// Prometheus metrics.
mod metrics;
/// Liveness, readiness and metrics routes, for operators and load balancers.
mod monitoring;
/// The OAuth 2.0 client (authorize, exchange, refresh, revoke, token answers read), pending flows, each finished once.
pub mod oauth;
/// Every page a browser is shown, rendered and escaped in one place.
pub mod page;
/// The `rekey` subcommand: has `connections` re-seal every credential under the first key.
pub mod rekey;
/// The one log line per request, with a failure's detail when there is one.
mod request_log;
/// The built-in provider and fake API behind `--sandbox`, and the provider the integration tests run against.
pub mod sandbox;
/// The accept loop with the contract's limits and graceful shutdown.
mod server;
/// The state every route shares; it holds no store handle.
mod state;
/// Persistence for SQLite and Postgres; SQL lives here only.
pub mod store;
/// Work that must finish once begun, whoever was waiting for it.
mod task;
/// The browser's routes and pages.
pub mod web;
