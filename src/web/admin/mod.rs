//! The operator's page at `/admin`: sign in with the admin token, see every
//! connection at a glance (status, kind, end user, tags, what last went
//! wrong), find one, open it to read its events and their deliveries, and
//! act on it: make a connect link, refresh, redeliver an event, delete.
//! Server-rendered, no JavaScript; every change is a POST that needs the
//! session's form token and comes from this server's own page.

mod actions;
mod pages;
mod session;

use axum::handler::Handler;
use axum::middleware;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::checked::ConnectionId;
use crate::state::AppState;
use crate::web::error::PageError;

/// The connection an address names; one that cannot exist is not found.
fn connection_in(raw: &str) -> Result<ConnectionId, PageError> {
    ConnectionId::parse(raw).map_err(|_| PageError::NotFound)
}

/// Whether `path` is one of the operator's page's, whose errors lead back to it.
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(pages::dashboard))
        .route("/admin/connections/{id}", get(pages::connection))
        .route(
            "/admin/connections/{id}/delete",
            get(pages::confirm_delete).merge(change(actions::delete)),
        )
        .route("/admin/sign-in", change(actions::sign_in))
        .route("/admin/sign-out", change(actions::sign_out))
        .route("/admin/connect-link", change(actions::connect_link))
        .route("/admin/connections/{id}/refresh", change(actions::refresh))
        .route("/admin/events/{id}/redeliver", change(actions::redeliver))
}

/// A route that changes something: a POST that must come from our own page.
fn change<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    post(handler).route_layer(middleware::from_fn(super::csrf::only_from_our_pages))
}
