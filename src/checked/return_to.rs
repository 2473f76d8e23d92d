//! `ReturnTo`: where the browser goes after a connect.

use serde::{Deserialize, Serialize};
use url::Url;

use super::origin::{parse_web_url, Origin, UrlError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
