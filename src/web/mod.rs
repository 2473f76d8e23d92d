//! The browser's routes: the connect page, the flow, the page's forms, the
//! script an app's own page loads to open them in a popup, and the
//! operator's page.

mod access;
mod admin;
mod auth;
mod callback;
mod connect_page;
mod connect_script;
mod csrf;
pub mod error;
mod forms;
pub mod host;
mod outcome;
mod popup;
mod session_in_query;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The browser's routes. The pages and forms answer only for this server's
/// own host names; the static scripts and stylesheet hold nothing to protect.
pub fn router(state: &AppState) -> Router<AppState> {
    let from_our_pages = middleware::from_fn(csrf::only_from_our_pages);
    Router::new()
        .route("/", get(connect_page::show))
        .route("/auth", get(auth::start))
        .route("/callback", get(callback::finish))
        .route(
            "/connect/api-key",
            post(forms::save_api_key).route_layer(from_our_pages.clone()),
        )
        .route(
            "/disconnect",
            get(connect_page::confirm_disconnect)
                .merge(post(forms::disconnect).route_layer(from_our_pages)),
        )
        .merge(admin::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            host::only_own_hosts,
        ))
        .route("/assets/style.css", get(crate::page::stylesheet))
        .route("/assets/popup.js", get(crate::page::popup_script))
        .route("/connect.js", get(connect_script::serve))
        .route("/favicon.ico", get(crate::page::favicon))
}
