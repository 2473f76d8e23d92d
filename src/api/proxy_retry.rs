//! Opt-in retries for a proxied call. A caller asks with `X-Retries: N`
//! (0 to 5, none by default); a call that failed on the way (no answer, a
//! 5xx or a 429) is then sent again, after what the API's retry header says
//! or else an exponential backoff, each wait capped. Only methods that are
//! idempotent (RFC 9110 §9.2.2) are retried, unless the caller also sends
//! `X-Retries-Unsafe: true`: a POST sent twice may create twice.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode};

use super::error::ApiError;
use crate::http_client::OutboundError;

/// The most retries a caller may ask for.
pub const MAX_RETRIES: u32 = 5;

/// The longest wait between two attempts, whatever the API says: a key
/// blocked for a minute is better reported than waited out.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The first backoff when the API names no wait; each next one doubles.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

static RETRIES: HeaderName = HeaderName::from_static("x-retries");
static RETRIES_UNSAFE: HeaderName = HeaderName::from_static("x-retries-unsafe");

/// The API's retry headers, in the order they are believed: the standard
/// one, and EmailOctopus's rate-limit spelling.
static RETRY_HINTS: [HeaderName; 2] = [
    header::RETRY_AFTER,
    HeaderName::from_static("x-ratelimiting-retry-after"),
];

/// The retries a call may still make.
#[derive(Debug)]
pub struct Retries {
    left: u32,
    made: u32,
}

impl Retries {
    /// The retries the caller asked for: none for a method that is not
    /// idempotent unless it also said so was safe; a malformed ask is refused.
    pub fn asked(method: &Method, headers: &HeaderMap) -> Result<Self, ApiError> {
        let count = match headers.get(&RETRIES) {
            None => 0,
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|n| *n <= MAX_RETRIES)
                .ok_or(ApiError::Invalid {
                    field: "X-Retries",
                    reason: "a whole number from 0 to 5",
                })?,
        };
        let unsafe_allowed = match headers.get(&RETRIES_UNSAFE).map(|v| v.to_str()) {
            None => false,
            Some(Ok(v)) if v.eq_ignore_ascii_case("true") => true,
            Some(Ok(v)) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => {
                return Err(ApiError::Invalid {
                    field: "X-Retries-Unsafe",
                    reason: "true or false",
                })
            }
        };
        let idempotent = matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        Ok(Self {
            left: if idempotent || unsafe_allowed {
                count
            } else {
                0
            },
            made: 0,
        })
    }

    /// The wait before another attempt after `outcome`, taking that retry;
    /// `None` when the outcome stands.
    pub fn after(&mut self, outcome: &Result<reqwest::Response, ApiError>) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        let hinted = match outcome {
            Err(ApiError::Upstream(
                OutboundError::Timeout { .. } | OutboundError::Unreachable(_),
            )) => None,
            Ok(answer) if worth_retrying(answer.status()) => retry_hint(answer.headers()),
            _ => return None,
        };
        let wait = hinted
            .unwrap_or_else(|| FIRST_BACKOFF.saturating_mul(1 << self.made.min(16)))
            .min(MAX_WAIT);
        self.left -= 1;
        self.made += 1;
        Some(wait)
    }
}

fn worth_retrying(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The first retry header in seconds (a number, decimals allowed), at most
/// the cap; an HTTP date, a negative number or nonsense counts as no hint.
fn retry_hint(headers: &HeaderMap) -> Option<Duration> {
    RETRY_HINTS.iter().find_map(|name| {
        let seconds: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
        (seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(MAX_WAIT.as_secs_f64())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (HeaderName::from_static(name), value.parse().unwrap()))
            .collect()
    }

    fn answer(status: u16, pairs: &[(&'static str, &str)]) -> Result<reqwest::Response, ApiError> {
        let mut response = axum::http::Response::new("");
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        *response.headers_mut() = headers(pairs);
        Ok(reqwest::Response::from(response))
    }

    fn asked(method: Method, pairs: &[(&'static str, &str)]) -> Retries {
        Retries::asked(&method, &headers(pairs)).unwrap()
    }

    #[test]
    fn no_retries_unless_asked() {
        assert_eq!(asked(Method::GET, &[]).after(&answer(503, &[])), None);
    }

    #[test]
    fn a_malformed_or_excessive_ask_is_refused() {
        for bad in ["-1", "6", "many", ""] {
            let refused = Retries::asked(&Method::GET, &headers(&[("x-retries", bad)]));
            assert!(
                matches!(
                    refused,
                    Err(ApiError::Invalid {
                        field: "X-Retries",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let refused = Retries::asked(
            &Method::GET,
            &headers(&[("x-retries", "1"), ("x-retries-unsafe", "yes")]),
        );
        assert!(matches!(
            refused,
            Err(ApiError::Invalid {
                field: "X-Retries-Unsafe",
                ..
            })
        ));
    }

    #[test]
    fn a_post_is_retried_only_when_the_caller_says_it_is_safe() {
        let mut post = asked(Method::POST, &[("x-retries", "2")]);
        assert_eq!(post.after(&answer(503, &[])), None);
        let mut unsafe_post = asked(
            Method::POST,
            &[("x-retries", "2"), ("x-retries-unsafe", "true")],
        );
        assert!(unsafe_post.after(&answer(503, &[])).is_some());
    }

    #[test]
    fn the_apis_wait_is_taken_in_either_spelling_and_capped() {
        let mut retries = asked(Method::GET, &[("x-retries", "5")]);
        // The fifth retry's backoff, for a hint that is no number of seconds.
        let fifth_backoff = Duration::from_millis(4000);
        let cases: [(&[(&'static str, &str)], Duration); 5] = [
            (&[("retry-after", "2")], Duration::from_secs(2)),
            (
                &[("x-ratelimiting-retry-after", "1.5")],
                Duration::from_millis(1500),
            ),
            (&[("retry-after", "86400")], MAX_WAIT),
            (&[("x-ratelimiting-retry-after", "1e300")], MAX_WAIT),
            (&[("retry-after", "NaN")], fifth_backoff),
        ];
        for (hint, wait) in cases {
            assert_eq!(retries.after(&answer(429, hint)), Some(wait), "{hint:?}");
        }
    }

    #[test]
    fn without_a_hint_the_backoff_doubles_up_to_the_cap_then_retries_run_out() {
        let mut retries = asked(Method::DELETE, &[("x-retries", "5")]);
        let waits: Vec<_> = (0..6)
            .map(|_| {
                retries.after(&answer(
                    502,
                    &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
                ))
            })
            .collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(
            waits,
            [ms(250), ms(500), ms(1000), ms(2000), ms(4000), None]
        );
    }

    #[test]
    fn only_failures_on_the_way_are_retried() {
        let mut retries = asked(Method::GET, &[("x-retries", "3")]);
        for status in [200, 400, 401, 404, 409] {
            assert_eq!(retries.after(&answer(status, &[])), None, "{status}");
        }
        assert_eq!(
            retries.after(&Err(ApiError::Paced(Duration::from_secs(1)))),
            None
        );
        let unreachable = Err(ApiError::Upstream(OutboundError::Unreachable("x".into())));
        assert!(retries.after(&unreachable).is_some());
    }
}
