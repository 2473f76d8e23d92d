//! What a token endpoint's answer becomes: our `TokenSet`, or an
//! `OAuthError` that keeps "refused" apart from "failed" and never carries
//! the answer's body.

use futures_util::FutureExt;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{ClientId, RefreshToken, RequestTokenError, TokenResponse, TokenUrl};
use secrecy::SecretString;

use super::client::TokenSet;
use super::transport::{Received, TransportError};
use super::{error_code, OAuthError};
use crate::http_client::OutboundError;

/// Reads a token endpoint's answer (its status and body) exactly as a code
/// exchange or a refresh does: our transport's checks, the oauth2 crate's
/// parse, then our types. What the provider sends is untrusted, so this is
/// what property tests drive.
pub fn read_token_answer(status: http::StatusCode, body: &[u8]) -> Result<TokenSet, OAuthError> {
    let reader = BasicClient::new(ClientId::new("reader".into()))
        .set_token_uri(TokenUrl::new("http://127.0.0.1/token".into()).expect("a fixed URL parses"));
    let refresh_token = RefreshToken::new("unused".into());
    reader
        .exchange_refresh_token(&refresh_token)
        .request_async(&Received { status, body })
        .now_or_never()
        .expect("an answer already received is read at once")
        .map(token_set)
        .map_err(token_error)
}

pub(super) fn token_set(response: BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(response.access_token().secret().to_owned()),
        refresh_token: response
            .refresh_token()
            .map(|t| SecretString::from(t.secret().to_owned())),
        // Token types are case-insensitive (RFC 6749 §5.1); one spelling
        // for every connection kind, so clients compare one string.
        token_type: match response.token_type().as_ref() {
            t if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
            t => t.to_owned(),
        },
        expires_in: response.expires_in(),
        scopes: response
            .scopes()
            .map(|scopes| scopes.iter().map(|s| s.to_string()).collect()),
    }
}

pub(super) fn token_error(
    error: RequestTokenError<TransportError, BasicErrorResponse>,
) -> OAuthError {
    match error {
        RequestTokenError::ServerResponse(answer) => OAuthError::Refused {
            code: error_code(answer.error().as_ref()),
        },
        other => transport_failure(other),
    }
}

/// Everything that is not an OAuth error answer. The details never include a
/// response body: a rude provider could echo a secret into it.
fn transport_failure<T: oauth2::ErrorResponse>(
    error: RequestTokenError<TransportError, T>,
) -> OAuthError {
    match error {
        RequestTokenError::Request(TransportError::Outbound(OutboundError::Timeout { .. })) => {
            OAuthError::Timeout
        }
        RequestTokenError::Request(e) => OAuthError::Failed(e.to_string()),
        RequestTokenError::Parse(e, _body) => {
            OAuthError::Failed(format!("malformed answer at {}", e.path()))
        }
        RequestTokenError::Other(reason) => OAuthError::Failed(reason),
        RequestTokenError::ServerResponse(_) => {
            OAuthError::Failed("unexpected error answer".into())
        }
    }
}
