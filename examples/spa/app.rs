//! The example app's backend, as small as it can be: it serves the app's one
//! page and, when the page asks, creates a connect session with the connect
//! server's backend API (the admin token never leaves this process) and hands
//! only the session's token to the page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

const PAGE: &str = include_str!("index.html");

/// A real app connects the signed-in user's own connection; this one has one user.
pub const CONNECTION_ID: &str = "example-user";

pub struct Settings {
    /// The connect server, e.g. `http://127.0.0.1:3000`.
    pub connect_server: String,
    /// Its `ADMIN_TOKEN`.
    pub admin_token: String,
    /// This app's own origin, which must be in the server's `RETURN_TO_ORIGINS`.
    pub origin: String,
}

struct App {
    settings: Settings,
    http: reqwest::Client,
}

pub fn router(settings: Settings) -> Router {
    let app = Arc::new(App {
        settings,
        http: reqwest::Client::new(),
    });
    Router::new()
        .route("/", get(page))
        .route("/connect-session", post(new_session))
        .with_state(app)
}

async fn page(State(app): State<Arc<App>>) -> Html<String> {
    Html(PAGE.replace("{{CONNECT_SERVER}}", &app.settings.connect_server))
}

#[derive(Deserialize)]
struct Wanted {
    /// `popup` or `redirect`.
    mode: String,
}

async fn new_session(
    State(app): State<Arc<App>>,
    Json(wanted): Json<Wanted>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let Settings {
        connect_server,
        admin_token,
        origin,
    } = &app.settings;
    let request = match wanted.mode.as_str() {
        "popup" => json!({"connection_id": CONNECTION_ID, "mode": "popup", "origin": origin}),
        "redirect" => json!({"connection_id": CONNECTION_ID, "return_to": format!("{origin}/")}),
        _ => return Err((StatusCode::BAD_REQUEST, "mode is popup or redirect".into())),
    };
    let failed = |e: reqwest::Error| (StatusCode::BAD_GATEWAY, e.to_string());
    let answer = app
        .http
        .post(format!("{connect_server}/connect-sessions"))
        .bearer_auth(admin_token)
        .json(&request)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(failed)?;
    let created: Value = answer.json().await.map_err(failed)?;
    // The page gets the token only: it is what connect.js needs.
    Ok(Json(json!({ "token": created["token"] })))
}
