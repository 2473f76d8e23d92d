//! Every HTML page: one layout, templates that escape by construction (maud),
//! readable on a phone, no JavaScript except the popup notice's one file.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::error::PageError;

const STYLESHEET: &str = include_str!("../../assets/style.css");
const POPUP_SCRIPT: &str = include_str!("../../assets/popup.js");

/// Renders pages with this deployment's banner (the sandbox says it is one).
#[derive(Debug, Clone, Default)]
pub struct Pages {
    banner: Option<String>,
    /// What every page adds after its body when it answers a popup.
    popup: Option<Markup>,
}

impl Pages {
    pub fn with_banner(banner: Option<String>) -> Self {
        Self {
            banner,
            popup: None,
        }
    }

    /// These pages, each ending with `notice` (see `web::popup`).
    pub fn in_popup(&self, notice: Markup) -> Self {
        Self {
            banner: self.banner.clone(),
            popup: Some(notice),
        }
    }

    /// A whole page: title, banner, body.
    pub fn render(&self, status: StatusCode, title: &str, body: Markup) -> Response {
        let body = html! { (body) @if let Some(popup) = &self.popup { (popup) } };
        render(status, title, self.banner.as_deref(), body)
    }

    /// A page that says what happened, in words, with a way back.
    pub fn message(
        &self,
        status: StatusCode,
        title: &str,
        text: &str,
        detail: Option<&str>,
    ) -> Response {
        self.render(
            status,
            title,
            html! {
                p { (text) }
                @if let Some(detail) = detail {
                    p.detail { "The provider said: " q { (detail) } }
                }
                p { a href="/" { "Back to the connect page" } }
            },
        )
    }

    /// The answer of a browser route: its page, or the page of its error.
    pub fn answer(&self, result: Result<Response, PageError>) -> Response {
        result.unwrap_or_else(|error| error.into_page(self))
    }
}

fn render(status: StatusCode, title: &str, banner: Option<&str>, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · EmailOctopus connect" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                @if let Some(banner) = banner {
                    p.banner role="status" { (banner) }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (status, page).into_response()
}

/// A page with no state and no markup from outside: what a panic becomes.
pub fn render_plain(status: StatusCode, text: &'static str) -> Response {
    render(status, "Error", None, html! { p { (text) } })
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The popup notice's script: tells the opener, then closes after a success.
pub async fn popup_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        POPUP_SCRIPT,
    )
        .into_response()
}
