//! This server's own host names: the host of `REDIRECT_URI`, the listen
//! address (and localhost names when it is on loopback), and `ALLOWED_HOSTS`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header;
use url::Url;

use super::AllowedHost;

/// This server's names: every `Host` it answers for. The browser routes and
/// the sandbox's routes both ask it.
#[derive(Debug, Clone)]
pub struct OwnHosts(Arc<[AllowedHost]>);

impl OwnHosts {
    pub fn new(redirect_uri: &Url, bound: SocketAddr, extra: &[AllowedHost]) -> Self {
        let mut hosts: Vec<AllowedHost> = AllowedHost::of_url(redirect_uri).into_iter().collect();
        let port = bound.port();
        let ip = bound.ip();
        let literal = Url::parse(&format!("http://{bound}"))
            .ok()
            .and_then(|url| AllowedHost::of_url(&url));
        hosts.extend(literal);
        if ip.is_loopback() || ip.is_unspecified() {
            for name in ["localhost", "127.0.0.1", "[::1]"] {
                hosts.push(AllowedHost::of_addr(name, port));
            }
        }
        hosts.extend(extra.iter().cloned());
        Self(hosts.into())
    }

    /// Whether `request` is for one of these names: its `Host`, or (HTTP/2)
    /// the authority of its URI.
    pub fn admit(&self, request: &Request) -> bool {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        host.is_some_and(|host| {
            self.0.iter().any(|name| name.spelled_by(host))
                || AllowedHost::parse(host)
                    .is_ok_and(|asked| self.0.iter().any(|name| name.admits(&asked)))
        })
    }
}
