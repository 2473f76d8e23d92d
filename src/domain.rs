//! Values parsed from untrusted input: holding one is the proof it was checked.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// A connection's name, chosen by the app: 1 to 100 of `A-Z a-z 0-9 . _ -`,
/// not starting with a dot, so it is safe in a URL path, a log line and a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{}", self.reason())]
    Invalid,
}

impl IdError {
    /// A fixed sentence: it never repeats the refused value.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid => "a connection id is 1 to 100 characters of A-Z, a-z, 0-9, '.', '_' or '-', not starting with '.'",
        }
    }
}

impl ConnectionId {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let valid = (1..=100).contains(&raw.len())
            && !raw.starts_with('.')
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::Invalid)
        }
    }

    pub fn default_connection() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConnectionId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(&raw)
    }
}

impl From<ConnectionId> for String {
    fn from(id: ConnectionId) -> String {
        id.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a connection authenticates at the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// Tokens from the OAuth redirect flow, refreshed as they expire.
    Oauth,
    /// An EmailOctopus API key the user pasted; it does not expire.
    ApiKey,
}

/// Whether a connection's credential can still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    /// The provider answered `invalid_grant` to a refresh: the user must connect again.
    NeedsReauth,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oauth => "oauth",
            Self::ApiKey => "api_key",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "oauth" => Some(Self::Oauth),
            "api_key" => Some(Self::ApiKey),
            _ => None,
        }
    }
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NeedsReauth => "needs_reauth",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "connected" => Some(Self::Connected),
            "needs_reauth" => Some(Self::NeedsReauth),
            _ => None,
        }
    }
}

/// A web origin: scheme, host and port, compared exactly after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(url::Origin);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reason())]
pub enum UrlError {
    NotAUrl,
    Scheme,
    Credentials,
    Suspicious,
    NotAnOrigin,
    OriginNotAllowed,
    TooLong,
}

impl UrlError {
    /// A fixed sentence: it never repeats the refused value.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotAUrl => "not an absolute URL",
            Self::Scheme => "only http and https are allowed",
            Self::Credentials => "must not contain a user name or password",
            Self::Suspicious => "must not contain backslashes, control characters or whitespace",
            Self::NotAnOrigin => "an origin has no path, query or fragment",
            Self::OriginNotAllowed => "its origin is not in RETURN_TO_ORIGINS",
            Self::TooLong => "is longer than 2048 characters",
        }
    }
}

/// Parses an absolute http(s) URL, refusing what browsers and URL parsers read
/// differently (backslashes, control characters, whitespace, userinfo).
fn parse_web_url(raw: &str) -> Result<Url, UrlError> {
    if raw
        .chars()
        .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return Err(UrlError::Suspicious);
    }
    let url = Url::parse(raw).map_err(|_| UrlError::NotAUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    Ok(url)
}

impl Origin {
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let url = parse_web_url(raw)?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(UrlError::NotAnOrigin);
        }
        Ok(Self(url.origin()))
    }

    /// `scheme://host[:port]`, as CSP source lists and `Origin` headers write it.
    pub fn serialize(&self) -> String {
        self.0.ascii_serialization()
    }
}

/// Where the browser goes after a connect: a URL on one of the allowed origins.
/// At most `MAX_LEN` characters as written and as serialized, so that every
/// accepted one fits in a browser's URL bar and in the flow cookie that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReturnTo(String);

impl ReturnTo {
    pub const MAX_LEN: usize = 2048;

    /// Parses `raw` and accepts it only when its origin (scheme, host and port,
    /// after IDNA and default-port normalisation) is one of `allowed`.
    pub fn parse(raw: &str, allowed: &[Origin]) -> Result<Self, UrlError> {
        if raw.len() > Self::MAX_LEN {
            return Err(UrlError::TooLong);
        }
        let url = parse_web_url(raw)?;
        let origin = url.origin();
        if !allowed.iter().any(|o| o.0 == origin) {
            return Err(UrlError::OriginNotAllowed);
        }
        // Serializing can grow a value (percent-encoding, punycode).
        if url.as_str().len() > Self::MAX_LEN {
            return Err(UrlError::TooLong);
        }
        Ok(Self(url.into()))
    }

    /// A value read back from our own store, which only ever holds parsed ones.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `None` only for a value that did not come from `parse`.
    pub fn origin(&self) -> Option<Origin> {
        Url::parse(&self.0).ok().map(|url| Origin(url.origin()))
    }
}

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
        let Ok(requested) = Self::parse(host_header) else {
            return false;
        };
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
    fn connection_ids_are_path_safe() {
        for good in ["default", "user-42", "a.b_c", "A"] {
            assert!(ConnectionId::parse(good).is_ok(), "{good}");
        }
        let long = "x".repeat(101);
        for bad in ["", ".", "..", "a/b", "a b", "é", "a%2f", long.as_str()] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn return_to_must_be_on_an_allowed_origin() {
        let allowed = [Origin::parse("https://app.example.com").unwrap()];
        let accepted = ReturnTo::parse("https://app.example.com/done?x=1", &allowed);
        assert!(accepted.is_ok());
        assert!(ReturnTo::parse("HTTPS://APP.example.com:443/x", &allowed).is_ok());
        let longest = format!("https://app.example.com/{}", "x".repeat(2048 - 24));
        assert_eq!(
            ReturnTo::parse(&longest, &allowed).unwrap().as_str(),
            longest
        );
        // Percent-encoding grows the value past the cap.
        let grows = format!("https://app.example.com/{}", "é".repeat(1000));
        assert_eq!(ReturnTo::parse(&grows, &allowed), Err(UrlError::TooLong));
        let too_long = format!("https://app.example.com/{}", "x".repeat(2048));
        for bad in [
            "https://app.example.com.evil.com/",
            "https://app.example.com:444/",
            "http://app.example.com/",
            "https://evil.com@app.example.com/",
            "https://app.example.com\\@evil.com/",
            "//app.example.com/",
            "/relative",
            "https://app.example.com /x",
            "https://app.example.com%09/x",
            "javascript:alert(1)",
            "https://аpp.example.com/",
            too_long.as_str(),
        ] {
            assert!(ReturnTo::parse(bad, &allowed).is_err(), "{bad}");
        }
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

    #[test]
    fn an_origin_has_no_path() {
        assert!(Origin::parse("https://a.example/").is_ok());
        assert!(Origin::parse("https://a.example/path").is_err());
    }
}

/// An API key as a person pastes it or a backend sends it: trimmed, 1 to
/// 512 characters. Holding one says nothing about whether the API takes it.
#[derive(Clone)]
pub struct ApiKey(secrecy::SecretString);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reason())]
pub struct ApiKeyError;

impl ApiKeyError {
    pub fn reason(&self) -> &'static str {
        "must be 1 to 512 characters"
    }
}

impl ApiKey {
    const MAX_LEN: usize = 512;

    pub fn parse(raw: &str) -> Result<Self, ApiKeyError> {
        let key = raw.trim();
        if key.is_empty() || key.len() > Self::MAX_LEN {
            return Err(ApiKeyError);
        }
        Ok(Self(secrecy::SecretString::from(key.to_owned())))
    }

    pub fn secret(&self) -> &secrecy::SecretString {
        &self.0
    }
}

/// By hand: the key never prints.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(..)")
    }
}
