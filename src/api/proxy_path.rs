//! The proxy's path check: which `{*path}` may be appended to `API_BASE_URL`.
//! It works on the raw, still percent-encoded path, so that nothing the
//! upstream (or a server in between) decodes later can climb out of the
//! base URL's path.

/// Why a proxy path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path has a '.' or '..' segment")]
    DotSegment,
    #[error("the path has an empty segment ('//')")]
    EmptySegment,
    #[error("the path encodes a '.', '/', '\\' or '%', or a control character")]
    EncodedDelimiter,
    #[error("the path has a backslash, '?', '#', whitespace or a control character")]
    Forbidden,
    #[error("the path has a malformed percent-encoding")]
    BadEncoding,
    #[error("the path starts like a URL with a scheme")]
    Scheme,
}

/// Checks the raw path after `/connections/{id}/api/` and returns it.
pub fn check(raw: &str) -> Result<&str, PathError> {
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    if raw
        .chars()
        .any(|c| matches!(c, '\\' | '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(PathError::Forbidden);
    }
    check_percent_encoding(raw)?;
    let segments: Vec<&str> = raw.split('/').collect();
    if segments[0].contains(':') {
        return Err(PathError::Scheme);
    }
    for (index, segment) in segments.iter().enumerate() {
        if matches!(*segment, "." | "..") {
            return Err(PathError::DotSegment);
        }
        // A trailing slash is fine; an empty segment anywhere else is not.
        if segment.is_empty() && index + 1 != segments.len() {
            return Err(PathError::EmptySegment);
        }
    }
    Ok(raw)
}

/// Every `%` starts two hex digits, and none encodes a delimiter a decoder
/// could turn into a dot segment or a new path (`.` `/` `\` `%`) or a control byte.
fn check_percent_encoding(raw: &str) -> Result<(), PathError> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathError::BadEncoding)?;
            let value = u8::from_str_radix(hex, 16).map_err(|_| PathError::BadEncoding)?;
            if matches!(value, b'.' | b'/' | b'\\' | b'%') || value < 0x20 || value == 0x7f {
                return Err(PathError::EncodedDelimiter);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_api_paths_pass() {
        for ok in [
            "lists",
            "lists/abc-123/contacts",
            "lists/",
            "campaigns/x%20y",
            "a/b.json",
            "..a/b..",
            "lists/%40x",
        ] {
            assert_eq!(check(ok), Ok(ok), "{ok}");
        }
    }

    #[test]
    fn escapes_are_refused() {
        let cases = [
            ("", PathError::Empty),
            ("..", PathError::DotSegment),
            ("lists/../../admin", PathError::DotSegment),
            ("./lists", PathError::DotSegment),
            ("lists/.", PathError::DotSegment),
            ("%2e%2e/admin", PathError::EncodedDelimiter),
            ("%2E./admin", PathError::EncodedDelimiter),
            ("lists%2f..%2fadmin", PathError::EncodedDelimiter),
            ("lists%5c..", PathError::EncodedDelimiter),
            ("%252e%252e/admin", PathError::EncodedDelimiter),
            ("lists%00", PathError::EncodedDelimiter),
            ("lists\\..\\admin", PathError::Forbidden),
            ("lists/ x", PathError::Forbidden),
            ("/evil.example/x", PathError::EmptySegment),
            ("lists//x", PathError::EmptySegment),
            ("http://evil.example/x", PathError::Scheme),
            ("https:evil", PathError::Scheme),
            ("lists%zz", PathError::BadEncoding),
            ("lists%2", PathError::BadEncoding),
        ];
        for (raw, expected) in cases {
            assert_eq!(check(raw), Err(expected), "{raw}");
        }
    }
}
