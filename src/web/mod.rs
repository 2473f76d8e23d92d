//! The browser's routes: the connect page, the flow, and the page's forms.

mod access;
mod auth;
mod callback;
mod connect_page;
mod csrf;
pub mod error;
mod forms;
pub mod page;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(connect_page::show))
        .route("/auth", get(auth::start))
        .route("/callback", get(callback::finish))
        .route("/connect/api-key", post(forms::save_api_key))
        .route("/disconnect", post(forms::disconnect))
        .route("/assets/style.css", get(page::stylesheet))
}
