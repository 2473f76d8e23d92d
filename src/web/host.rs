//! The browser routes answer only for this server's own host names: the
//! host of `REDIRECT_URI`, the listen address (and localhost names when it
//! is on loopback), and `ALLOWED_HOSTS`. Any other `Host` gets 421, which
//! closes DNS rebinding: a page whose own name was rebound to this listener
//! cannot drive the connect page, `/auth`, `/callback` or the forms.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::PageError;
use crate::state::AppState;

pub async fn only_own_hosts(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.browser_hosts.admit(&request) {
        return next.run(request).await;
    }
    PageError::WrongHost.into_response()
}
