//! `Origin`, and the URL checks it shares with `ReturnTo`.

use url::Url;

/// A web origin: scheme, host and port, compared exactly after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(pub(super) url::Origin);

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
pub(super) fn parse_web_url(raw: &str) -> Result<Url, UrlError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_has_no_path() {
        assert!(Origin::parse("https://a.example/").is_ok());
        assert!(Origin::parse("https://a.example/path").is_err());
    }
}
