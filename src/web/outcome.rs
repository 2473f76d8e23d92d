//! The answer to a browser that has just connected, by either route: back to
//! the app's `return_to`, or a page that says it is done.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::access::Target;
use crate::checked::ConnectionKind;
use crate::connections::Connection;
use crate::page::Pages;

pub fn connected(pages: &Pages, target: &Target, connection: &Connection) -> Response {
    if let Some(return_to) = &target.return_to {
        return Redirect::to(return_to.as_str()).into_response();
    }
    let how = match connection.kind {
        ConnectionKind::Oauth => "Your EmailOctopus account is connected.",
        ConnectionKind::ApiKey => "Your EmailOctopus API key was accepted and saved.",
    };
    pages.render(
        StatusCode::OK,
        "Connected",
        html! {
            p.status { (how) }
            p { "Connection " code { (connection.id) } " is ready; you can close this page." }
        },
    )
}
