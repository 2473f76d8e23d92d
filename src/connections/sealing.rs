//! Sealing and opening a connection's credential: each field is bound to
//! its connection id and its name, so a value copied onto another
//! connection, or swapped between fields, fails to open.

use secrecy::{ExposeSecret, SecretString};

use crate::checked::{ConnectionId, ConnectionKind};
use crate::clock::UnixTime;
use crate::crypto::{CryptoError, Sealer};
use crate::oauth::TokenSet;
use crate::store::SealedCredential;

/// Ten years: longer lifetimes are taken as this.
const MAX_LIFETIME_SECS: i64 = 10 * 366 * 24 * 60 * 60;
/// Shorter lifetimes (0 included) are taken as this, so a provider that says
/// its tokens expire at once cannot make every call refresh.
const MIN_LIFETIME_SECS: i64 = 30;

#[derive(Clone, Copy)]
pub enum Field {
    Access,
    Refresh,
}

/// The associated data a credential field is sealed with.
pub fn aad(id: &ConnectionId, field: Field) -> Vec<u8> {
    let field = match field {
        Field::Access => "access_token",
        Field::Refresh => "refresh_token",
    };
    format!("emailoctopus-connect/v1/{field}/{id}").into_bytes()
}

/// `plaintext` sealed as `id`'s `field`.
pub(super) fn seal_field(
    keys: &Sealer,
    id: &ConnectionId,
    field: Field,
    plaintext: &[u8],
) -> Vec<u8> {
    keys.seal(plaintext, &aad(id, field))
}

/// `id`'s `field` opened: only under its own connection and name.
pub(super) fn open_field(
    keys: &Sealer,
    id: &ConnectionId,
    field: Field,
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    keys.open(sealed, &aad(id, field))
}

/// `id`'s `field` opened as text: a secret that will not print.
pub(super) fn open_secret(
    keys: &Sealer,
    id: &ConnectionId,
    field: Field,
    sealed: &[u8],
) -> Result<SecretString, CryptoError> {
    let bytes = open_field(keys, id, field, sealed)?;
    String::from_utf8(bytes)
        .map(SecretString::from)
        .map_err(|_| CryptoError::Forged)
}

/// The tokens of a finished authorization or a refresh, sealed for `id`.
/// A lifetime is counted from `now`.
pub(super) fn seal_tokens(
    keys: &Sealer,
    id: &ConnectionId,
    tokens: &TokenSet,
    requested_scopes: Vec<String>,
    now: UnixTime,
) -> SealedCredential {
    SealedCredential {
        kind: ConnectionKind::Oauth,
        scopes: tokens.scopes.clone().unwrap_or(requested_scopes),
        token_type: tokens.token_type.clone(),
        sealed_access_token: seal_field(
            keys,
            id,
            Field::Access,
            tokens.access_token.expose_secret().as_bytes(),
        ),
        sealed_refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|t| seal_field(keys, id, Field::Refresh, t.expose_secret().as_bytes())),
        // Clamped: a provider's absurd lifetime must still give a time
        // RFC 3339 can write, and a tiny one must not cause a refresh storm.
        expires_at: tokens.expires_in.map(|d| {
            now + i64::try_from(d.as_secs())
                .unwrap_or(i64::MAX)
                .clamp(MIN_LIFETIME_SECS, MAX_LIFETIME_SECS)
        }),
    }
}

/// An API key the API has accepted, sealed for `id`.
pub(super) fn seal_api_key(
    keys: &Sealer,
    id: &ConnectionId,
    key: &SecretString,
) -> SealedCredential {
    SealedCredential {
        kind: ConnectionKind::ApiKey,
        scopes: Vec::new(),
        token_type: "Bearer".into(),
        sealed_access_token: seal_field(keys, id, Field::Access, key.expose_secret().as_bytes()),
        sealed_refresh_token: None,
        expires_at: None,
    }
}
