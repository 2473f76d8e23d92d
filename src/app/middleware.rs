//! What every answer goes through: security headers, limits, timeouts,
//! panics, the request log and the latency metric.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use super::MAX_BODY_BYTES;
use crate::checked::Origin;
use crate::metrics::Metrics;
use crate::page::Pages;
use crate::request_log::{self, FailureDetail};
use crate::server;
use crate::state::AppState;
use crate::web::error::render_page_error;

/// Headers every answer carries, limits, timeouts, panics, logs and latency.
pub(super) fn with_middleware(router: Router, state: &AppState) -> Router {
    let every = EveryAnswer::new(
        state.metrics.clone(),
        state.pages.clone(),
        &state.return_to_origins,
    );
    with_every_answer(router, every, server::SLOW_REQUEST_LIMIT)
}

/// The finishing middleware is the outermost layer, so that the answers the
/// timeout and a caught panic make get the headers, the log line and the
/// latency sample like any other.
fn with_every_answer(router: Router, every: EveryAnswer, request_limit: Duration) -> Router {
    router
        .layer(CatchPanicLayer::custom(|_panic| {
            // The panic's message may hold anything; it is not shown or logged.
            let mut response = crate::page::render_plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Please try again.",
            );
            FailureDetail::attach(&mut response, "the request handler panicked");
            response
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_limit,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(every, finish_answer))
}

/// What every answer gets on its way out.
#[derive(Clone)]
struct EveryAnswer {
    metrics: Metrics,
    pages: Pages,
    csp: HeaderValue,
}

impl EveryAnswer {
    fn new(metrics: Metrics, pages: Pages, return_to_origins: &[Origin]) -> Self {
        // Forms may post to this origin only; a form's answer may redirect to a
        // `return_to` origin, which CSP's form-action also governs.
        let form_targets: String = return_to_origins
            .iter()
            .map(|o| format!(" {}", o.serialize()))
            .collect();
        let csp = format!(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'{form_targets}; object-src 'none'"
        );
        let csp = HeaderValue::from_str(&csp).expect("serialised origins are valid header text");
        Self {
            metrics,
            pages,
            csp,
        }
    }
}

/// An error's page, the security headers of every answer, `no-store` unless
/// the handler set its own caching, the latency metric and the request's one
/// log line: one middleware rather than a layer each, which showed in the
/// per-request cost.
async fn finish_answer(State(every): State<EveryAnswer>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let mut response = render_page_error(&every.pages, &uri, response);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, every.csp);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let elapsed = started.elapsed();
    every.metrics.request_finished(route, elapsed.as_secs_f64());
    request_log::write(
        &method,
        route,
        response.status(),
        elapsed,
        response.extensions().get::<FailureDetail>(),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    const SECURITY_HEADERS: [header::HeaderName; 5] = [
        header::CONTENT_SECURITY_POLICY,
        header::REFERRER_POLICY,
        header::X_CONTENT_TYPE_OPTIONS,
        header::X_FRAME_OPTIONS,
        header::CACHE_CONTROL,
    ];

    /// Log lines, as the server's subscriber writes them.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A router of its own behind the server's layers, with a route that
    /// answers, one that panics and one that never answers: the production
    /// router has no route that panics or hangs on purpose.
    fn app(metrics: &Metrics) -> Router {
        let routes = Router::new()
            .route("/answers", get(|| async { "fine" }))
            .route("/panics", get(panics))
            .route("/hangs", get(std::future::pending::<()>));
        let every = EveryAnswer::new(metrics.clone(), Pages::default(), &[]);
        with_every_answer(routes, every, Duration::from_millis(50))
    }

    async fn panics() -> &'static str {
        panic!("a bug")
    }

    async fn get_path(app: &Router, path: &str) -> Response {
        let request = Request::get(path).body(Body::empty()).unwrap();
        app.clone().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn a_timeout_and_a_panic_are_finished_like_any_other_answer() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let metrics = Metrics::default();
        let app = app(&metrics);

        let normal = get_path(&app, "/answers").await;
        assert_eq!(normal.status(), StatusCode::OK);
        for (path, status) in [
            ("/hangs", StatusCode::REQUEST_TIMEOUT),
            ("/panics", StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            let answer = get_path(&app, path).await;
            assert_eq!(answer.status(), status, "{path}");
            for name in &SECURITY_HEADERS {
                assert_eq!(
                    answer.headers().get(name),
                    normal.headers().get(name),
                    "{path}: {name}"
                );
            }
        }

        let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("route=\"/hangs\" status=408"), "{logged}");
        assert!(
            logged.contains("route=\"/panics\" status=500")
                && logged.contains("the request handler panicked"),
            "{logged}"
        );
        assert!(
            !logged.contains("a bug"),
            "the panic's message stays out: {logged}"
        );
        let exposition = metrics.render(&[]);
        for route in ["/hangs", "/panics"] {
            assert!(
                exposition.contains(&format!("route=\"{route}\"")),
                "no latency sample for {route}: {exposition}"
            );
        }
    }
}
