//! The accept loop: hyper's HTTP/1 with the contract's limits (a head over
//! 32 KiB gets 431, a head that trickles, or never comes, for 30 s is cut
//! off), a deep listen backlog for bursts, a lingering close so that an
//! early answer reaches a client still writing its request, and graceful
//! shutdown that lets in-flight requests finish.
//!
//! HTTP/1 only: detecting HTTP/2 first would read the opening bytes with no
//! timer running, so a silent client could hold a connection forever.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tower::ServiceExt;

use crate::lingering_close::LingeringClose;

pub const MAX_HEAD_BYTES: usize = 32 * 1024;
pub const SLOW_REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
const LISTEN_BACKLOG: u32 = 1024;

/// Binds with a backlog deep enough for a burst of new connections.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let mut builder = http1::Builder::new();
    builder
        .max_header_size(MAX_HEAD_BYTES)
        .header_read_timeout(SLOW_REQUEST_LIMIT)
        .timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Each request knows its peer (`ConnectInfo`), as axum's own
        // `into_make_service_with_connect_info` would tell it.
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let service = TowerToHyperService::new(service);
        let stream = TokioIo::new(LingeringClose::new(stream));
        let connection = builder.serve_connection(stream, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away mid-request is not our error.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some requests did not finish in time");
    }
}
