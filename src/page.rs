//! Every HTML page: one layout, templates that escape by construction (maud),
//! readable on a phone, no JavaScript except the popup notice's one file.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

const STYLESHEET: &str = include_str!("../assets/style.css");
const POPUP_SCRIPT: &str = include_str!("../assets/popup.js");
const FAVICON: &str = include_str!("../assets/favicon.svg");

/// Where the "back" link of a result or error page leads.
#[derive(Debug, Clone)]
pub enum BackLink {
    /// The connect page, for the same connect session while it can still be used.
    ConnectPage { session: Option<String> },
    /// The app that sent the browser here (a session's `return_to`).
    App(String),
    /// The operator's page.
    Admin,
    /// Nowhere useful: the link is spent and the page says what to do instead.
    None,
}

impl BackLink {
    /// The connect page's address for this session.
    pub fn connect_page(session: Option<&str>) -> String {
        match session.filter(|s| !s.is_empty()) {
            Some(token) => format!("/?session={}", urlencode(token)),
            None => "/".to_owned(),
        }
    }

    pub fn markup(&self) -> Markup {
        match self {
            Self::ConnectPage { session } => html! {
                p { a href=(Self::connect_page(session.as_deref())) { "Back to the connect page" } }
            },
            Self::App(url) => html! { p { a href=(url) { "Back to the app" } } },
            Self::Admin => html! { p { a href="/admin" { "Back to the operator's page" } } },
            Self::None => html! {
                p { "To connect again, open a new connect link from the app you are connecting." }
            },
        }
    }
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

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
        provider_words: Option<&str>,
        back: &BackLink,
    ) -> Response {
        self.render(
            status,
            title,
            html! {
                p { (text) }
                @if let Some(words) = provider_words {
                    p.detail { "The sign-in service said: " q { (words) } }
                }
                (back.markup())
            },
        )
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
                link rel="icon" href="/favicon.ico" type="image/svg+xml";
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
    asset("text/css; charset=utf-8", STYLESHEET)
}

/// Served at the address browsers ask for by default, so no page load logs a 404.
pub async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The popup notice's script: tells the opener, then closes after a success.
pub async fn popup_script() -> Response {
    asset("text/javascript; charset=utf-8", POPUP_SCRIPT)
}
