//! The provider client: hides the oauth2 crate's type parameters behind one
//! concrete type with the four calls this server makes.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::token_answer::{token_error, token_set};
use super::transport::Transport;
use super::{error_code, OAuthError};
use crate::config::{ProviderSettings, TokenAuthMethod};
use crate::http_client::{read_capped, OutboundError, MAX_PROVIDER_ANSWER};

type ConfiguredClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What a token endpoint gave, with the secrets in types that will not print.
#[derive(Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub token_type: String,
    pub expires_in: Option<Duration>,
    /// `None` when the provider did not say (RFC 6749 §5.1: then it granted what was asked).
    pub scopes: Option<Vec<String>>,
}

/// A token to revoke, with its RFC 7009 `token_type_hint`.
pub enum RevocableToken {
    Refresh(SecretString),
    Access(SecretString),
}

/// The start of an authorization: where to send the browser, and what to keep.
pub struct Authorization {
    pub url: Url,
    pub state: CsrfToken,
    pub verifier: PkceCodeVerifier,
}

pub struct ProviderClient {
    client: ConfiguredClient,
    http: Transport,
    /// RFC 7009 requests are made here rather than by the oauth2 crate, which
    /// refuses plain http even on loopback (where the sandbox and tests live);
    /// the settings only allow http for loopback hosts.
    revocation: Option<RevocationEndpoint>,
    scopes: Vec<String>,
    issuer: Option<String>,
}

impl ProviderClient {
    /// `redirect_uri` is sent exactly as given (it was checked when the settings were parsed).
    pub fn new(settings: &ProviderSettings, redirect_uri: &str, http: reqwest::Client) -> Self {
        let auth_type = match settings.auth_method {
            TokenAuthMethod::ClientSecretPost => AuthType::RequestBody,
            TokenAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
        };
        let client = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                settings.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(AuthUrl::from_url(settings.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(settings.token_url.clone()))
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_owned()).expect("a checked redirect URI parses"),
            )
            .set_auth_type(auth_type);
        Self {
            client,
            http: Transport(http),
            revocation: settings.revoke_url.clone().map(|url| RevocationEndpoint {
                url,
                auth_method: settings.auth_method,
                client_id: settings.client_id.clone(),
                client_secret: settings.client_secret.clone(),
            }),
            scopes: settings.scopes.clone(),
            issuer: settings.issuer.clone(),
        }
    }

    /// The `iss` that authorization responses must carry (RFC 9207), if configured.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The scopes requested; what a connection holds when the provider does not say.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The authorize URL (RFC 6749 §4.1.1) with a fresh state and PKCE S256
    /// pair (RFC 7636 §4.1-4.3), both from the OS CSPRNG.
    pub fn authorize(&self) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        Authorization {
            url,
            state,
            verifier,
        }
    }

    /// RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5).
    pub async fn exchange_code(
        &self,
        code: String,
        verifier: PkceCodeVerifier,
    ) -> Result<TokenSet, OAuthError> {
        self.client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map(token_set)
            .map_err(token_error)
    }

    /// RFC 6749 §6.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, OAuthError> {
        let refresh_token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        self.client
            .exchange_refresh_token(&refresh_token)
            .request_async(&self.http)
            .await
            .map(token_set)
            .map_err(token_error)
    }

    /// True when a revocation endpoint is configured.
    pub fn can_revoke(&self) -> bool {
        self.revocation.is_some()
    }

    /// RFC 7009 §2.1. Only a 200 is success (§2.2); a 503 (§2.2.1) is a failure.
    pub async fn revoke(&self, token: RevocableToken) -> Result<(), OAuthError> {
        let revocation = self
            .revocation
            .as_ref()
            .ok_or_else(|| OAuthError::Failed("no revocation endpoint configured".into()))?;
        let (token, hint) = match &token {
            RevocableToken::Refresh(t) => (t, "refresh_token"),
            RevocableToken::Access(t) => (t, "access_token"),
        };
        let mut form = vec![("token", token.expose_secret()), ("token_type_hint", hint)];
        let mut request = self.http.0.post(revocation.url.clone());
        match revocation.auth_method {
            TokenAuthMethod::ClientSecretPost => {
                form.push(("client_id", &revocation.client_id));
                form.push(("client_secret", revocation.client_secret.expose_secret()));
            }
            // RFC 6749 §2.3.1: the id and secret are form-encoded before Basic.
            TokenAuthMethod::ClientSecretBasic => {
                request = request.basic_auth(
                    form_encode(&revocation.client_id),
                    Some(form_encode(revocation.client_secret.expose_secret())),
                );
            }
        }
        let answer = request
            .form(&form)
            .send()
            .await
            .map_err(|e| outbound_failure(e.into()))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_client_error() {
            let body = read_capped(answer, MAX_PROVIDER_ANSWER)
                .await
                .unwrap_or_default();
            if let Ok(error) = serde_json::from_slice::<BasicErrorResponse>(&body) {
                return Err(OAuthError::Refused {
                    code: error_code(error.error().as_ref()),
                });
            }
        }
        Err(OAuthError::Failed(format!(
            "revocation answered HTTP {}",
            status.as_u16()
        )))
    }
}

struct RevocationEndpoint {
    url: Url,
    auth_method: TokenAuthMethod,
    client_id: String,
    client_secret: SecretString,
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn outbound_failure(error: OutboundError) -> OAuthError {
    match error {
        OutboundError::Timeout { .. } => OAuthError::Timeout,
        other => OAuthError::Failed(other.to_string()),
    }
}
