//! The authorization response as it arrives at the callback (RFC 6749 §4.1.2,
//! §4.1.2.1; RFC 9207 §2), parsed from the raw query.

/// Longer values are not what a provider sends; they are refused unread.
const MAX_VALUE_LEN: usize = 4096;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct AuthorizationResponse {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub iss: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResponseError {
    /// RFC 6749 §3.1: request and response parameters MUST NOT be included more than once.
    #[error("parameter {0} appears more than once")]
    Repeated(&'static str),
    #[error("parameter {0} is too long")]
    TooLong(&'static str),
}

impl AuthorizationResponse {
    pub fn parse(query: &str) -> Result<Self, ResponseError> {
        let mut response = Self::default();
        let mut seen: Vec<&'static str> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (name, slot) = match name.as_ref() {
                "state" => ("state", &mut response.state),
                "code" => ("code", &mut response.code),
                "error" => ("error", &mut response.error),
                "error_description" => ("error_description", &mut response.error_description),
                "iss" => ("iss", &mut response.iss),
                _ => continue,
            };
            // By name, not by filled slot: `state=&state=x` repeats too.
            if seen.contains(&name) {
                return Err(ResponseError::Repeated(name));
            }
            seen.push(name);
            if value.len() > MAX_VALUE_LEN {
                return Err(ResponseError::TooLong(name));
            }
            *slot = Some(value.into_owned()).filter(|v| !v.is_empty());
        }
        Ok(response)
    }

    /// The provider's description, safe to show as text: printable, one line, short.
    pub fn shown_description(&self) -> Option<String> {
        let description: String = self
            .error_description
            .as_deref()?
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        Some(description).filter(|d| !d.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_success_and_an_error() {
        let ok = AuthorizationResponse::parse("code=abc&state=xyz&iss=https%3A%2F%2Fas").unwrap();
        assert_eq!(ok.code.as_deref(), Some("abc"));
        assert_eq!(ok.iss.as_deref(), Some("https://as"));
        let err = AuthorizationResponse::parse(
            "error=access_denied&error_description=no%0Athanks&state=s",
        )
        .unwrap();
        assert_eq!(err.error.as_deref(), Some("access_denied"));
        assert_eq!(err.shown_description().as_deref(), Some("nothanks"));
    }

    #[test]
    fn refuses_repeated_parameters() {
        assert_eq!(
            AuthorizationResponse::parse("state=a&code=1&state=b"),
            Err(ResponseError::Repeated("state"))
        );
    }

    #[test]
    fn empty_values_count_as_missing() {
        assert_eq!(
            AuthorizationResponse::parse("state=&code=").unwrap(),
            AuthorizationResponse::default()
        );
    }
}
