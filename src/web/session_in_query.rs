//! The `session` query parameter, which every browser route and form
//! carries in its address so that any answer, an error page too, can link
//! back to it.

use axum::http::Uri;

/// The session named in the address, if any.
pub fn session_in_query(uri: &Uri) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "session")
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}
