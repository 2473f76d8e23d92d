//! `AllowedHost`: a `Host` the browser routes answer for.

use url::Url;

/// A `Host` the browser routes answer for: a host name or IP literal
/// (lowercase, IPv6 in brackets) and a port, or any port when `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a host or host:port")]
pub struct HostError;

impl AllowedHost {
    /// `host` or `host:port`, as an `ALLOWED_HOSTS` entry or a `Host` header gives it.
    pub fn parse(raw: &str) -> Result<Self, HostError> {
        let authority: http::uri::Authority = raw.parse().map_err(|_| HostError)?;
        let parsed = Self {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16(),
        };
        // Exactly `host` or `host:port` with a numeric port, nothing dropped.
        let rebuilt = match parsed.port {
            Some(port) => format!("{}:{port}", parsed.host),
            None => parsed.host.clone(),
        };
        if parsed.host.is_empty() || !rebuilt.eq_ignore_ascii_case(raw) {
            return Err(HostError);
        }
        Ok(parsed)
    }

    /// The host and port of `url` (its scheme's default port when it names none).
    pub fn of_url(url: &Url) -> Option<Self> {
        Some(Self {
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }

    pub fn of_addr(host: &str, port: u16) -> Self {
        Self {
            host: host.to_ascii_lowercase(),
            port: Some(port),
        }
    }

    /// Whether a request's `Host` names this. A `Host` without a port means
    /// the scheme's default one, 80 or 443.
    pub fn matches(&self, host_header: &str) -> bool {
        Self::parse(host_header).is_ok_and(|requested| self.admits(&requested))
    }

    /// Whether `raw` is exactly this `host:port`, in any case: how browsers
    /// send `Host`, so the usual request is let in without parsing it. A
    /// `false` settles nothing; `matches` has the last word.
    pub fn spelled_by(&self, raw: &str) -> bool {
        let Some(port) = self.port else {
            return false;
        };
        let Some((host, digits)) = raw.rsplit_once(':') else {
            return false;
        };
        let canonical_digits = !digits.is_empty()
            && digits.len() <= 5
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits.len() == 1 || !digits.starts_with('0'));
        canonical_digits && digits.parse() == Ok(port) && host.eq_ignore_ascii_case(&self.host)
    }

    /// As `matches`, for a `Host` parsed once to be held against several names.
    pub fn admits(&self, requested: &AllowedHost) -> bool {
        requested.host == self.host
            && match (self.port, requested.port) {
                (None, _) => true,
                (Some(port), Some(asked)) => port == asked,
                (Some(port), None) => matches!(port, 80 | 443),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_spelling_is_recognised_without_parsing_and_agrees_with_matches() {
        let own = AllowedHost::of_addr("Connect.Example", 8080);
        for (raw, spelled) in [
            ("connect.example:8080", true),
            ("CONNECT.example:8080", true),
            ("connect.example:08080", false),
            ("connect.example:+8080", false),
            ("connect.example:80", false),
            ("connect.example", false),
            ("connect.example.:8080", false),
            ("other.example:8080", false),
            (":8080", false),
        ] {
            assert_eq!(own.spelled_by(raw), spelled, "{raw}");
            if spelled {
                assert!(own.matches(raw), "{raw}");
            }
        }
        assert!(!AllowedHost::parse("any.example")
            .unwrap()
            .spelled_by("any.example:1"));
    }

    #[test]
    fn allowed_hosts_match_host_headers() {
        let any_port = AllowedHost::parse("App.Example.com").unwrap();
        assert!(any_port.matches("app.example.com:8443"));
        assert!(any_port.matches("APP.example.com"));
        assert!(!any_port.matches("app.example.com.evil.com"));
        let exact =
            AllowedHost::of_url(&Url::parse("https://app.example.com/callback").unwrap()).unwrap();
        assert!(exact.matches("app.example.com") && exact.matches("app.example.com:443"));
        assert!(!exact.matches("app.example.com:8443"));
        let v6 = AllowedHost::parse("[::1]:3000").unwrap();
        assert!(v6.matches("[::1]:3000") && !v6.matches("[::1]:3001"));
        for bad in ["", "a b", "user@host", "host:port", "http://host"] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
            assert!(!any_port.matches(bad), "{bad}");
        }
    }
}
