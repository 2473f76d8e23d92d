//! `Settings`: how the sandbox's provider behaves. `--sandbox` makes one for
//! its run; the integration tests set others to play the providers they need.

use secrecy::SecretString;

/// What the authorization endpoint does with a request it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// A page with Approve and Deny, as a person sees it.
    Page,
    /// Approved at once, as a provider does for a user who approved before.
    AutoApprove,
}

/// How the provider behaves; `Provider::change` alters it between requests.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The one client it knows.
    pub client_id: String,
    pub client_secret: SecretString,
    /// The client's registered redirect URI, compared character for
    /// character. `None` takes the one each authorization request names and
    /// holds that code's exchange to it.
    pub redirect_uri: Option<String>,
    /// The key the fake API takes besides the access tokens it issued.
    pub api_key: SecretString,
    /// Seconds an access token lives, as `expires_in` says; zero or less is
    /// already expired when issued.
    pub expires_in: i64,
    /// Sent as `iss` in every authorization response (RFC 9207) when set.
    pub issuer: Option<String>,
    /// Grants carry a refresh token, rotated on each use. Without, a
    /// refresh answer carries none and the refresh token held keeps working
    /// (RFC 6749 §6 lets a provider keep it).
    pub refresh_tokens: bool,
    /// PKCE S256 is required and checked (RFC 7636); without, the challenge
    /// is ignored, as by a provider that does not support PKCE.
    pub pkce: bool,
    pub consent: Consent,
    /// The consent page sends `Cross-Origin-Opener-Policy: same-origin`.
    pub coop: bool,
}
