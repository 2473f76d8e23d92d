//! Pages inside a popup. When a popup session's connect ends (the callback,
//! the API-key form, an error of either, or a refusal of its link on the
//! connect page or at `/auth`), the page also carries a notice
//! that `assets/popup.js` posts to `window.opener`, with exactly the
//! session's origin as target, and that closes the popup after a success.
//! The notice holds the session's status as `/connect-sessions/status`
//! answers it: never a token.

use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

use super::error::PageError;
use crate::checked::{ConnectionKind, Origin, SessionHash};
use crate::connect_sessions::{Outcome, SessionReport, SessionStatus};
use crate::page::Pages;
use crate::state::AppState;

/// Records how `session`'s connect ended, for its status and its popup page.
/// A failure to record is logged; the page still says what happened.
pub async fn record(state: &AppState, session: &SessionHash, outcome: Outcome) {
    if let Err(error) = state.sessions.record(session, outcome).await {
        tracing::warn!(%error, "could not record how the connect session ended");
    }
}

/// The pages for a route that ends `session`'s connect: with the popup
/// notice when it is a popup session. An error answer carries them in its
/// extensions, so that its page gets the notice too.
pub async fn pages_for(state: &AppState, session: Option<&SessionHash>) -> Pages {
    let report = match session {
        Some(hash) => state.sessions.report(hash).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "could not read the connect session for its popup page");
            None
        }),
        None => None,
    };
    match report
        .as_ref()
        .and_then(|r| Some((r, r.popup_origin.as_ref()?)))
    {
        Some((report, origin)) => state.pages.in_popup(notice(report, origin)),
        None => state.pages.clone(),
    }
}

/// The answer to a request refused for its connect session (expired, used
/// up): in a popup session, its page tells the app's page too.
pub async fn refused(state: &AppState, session: Option<&str>, error: PageError) -> Response {
    let hash = session.and_then(SessionHash::of_token);
    (Extension(pages_for(state, hash.as_ref()).await), error).into_response()
}

fn notice(report: &SessionReport, origin: &Origin) -> Markup {
    html! {
        @if report.status == SessionStatus::Connected {
            p { "You can close this window." }
        }
        div #eoc-popup hidden
            data-origin=(origin.serialize())
            data-status=(report.status.as_str())
            data-connection-id=(report.connection_id)
            data-kind=(report.kind.map_or("", ConnectionKind::as_str)) {}
        script src="/assets/popup.js" {}
    }
}
