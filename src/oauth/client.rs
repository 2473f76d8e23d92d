//! The provider client: hides the oauth2 crate's type parameters behind one
//! concrete type with the four calls this server makes.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, RevocationErrorResponseType, RevocationUrl, Scope, StandardErrorResponse,
    StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::transport::{Transport, TransportError};
use super::OAuthError;
use crate::config::{ProviderSettings, TokenAuthMethod};
use crate::http_client::OutboundError;

type ConfiguredClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointSet>;

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
    scopes: Vec<String>,
    issuer: Option<String>,
    redirect_uri: Url,
}

impl ProviderClient {
    pub fn new(settings: &ProviderSettings, redirect_uri: Url, http: reqwest::Client) -> Self {
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
            .set_revocation_url_option(settings.revoke_url.clone().map(RevocationUrl::from_url))
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()))
            .set_auth_type(auth_type);
        Self {
            client,
            http: Transport(http),
            scopes: settings.scopes.clone(),
            issuer: settings.issuer.clone(),
            redirect_uri,
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

    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// A fresh state and PKCE S256 pair (RFC 7636 §4.1-4.2), both from the OS CSPRNG.
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
        self.client.revocation_url().is_some()
    }

    /// RFC 7009 §2.1. Only a 200 is success; a 503 (§2.2.1) is a failure.
    pub async fn revoke(&self, token: RevocableToken) -> Result<(), OAuthError> {
        let token = match token {
            RevocableToken::Refresh(t) => StandardRevocableToken::RefreshToken(RefreshToken::new(
                t.expose_secret().to_owned(),
            )),
            RevocableToken::Access(t) => StandardRevocableToken::AccessToken(
                oauth2::AccessToken::new(t.expose_secret().to_owned()),
            ),
        };
        let request = self
            .client
            .revoke_token(token)
            .map_err(|_| OAuthError::Failed("no revocation endpoint configured".into()))?;
        request
            .request_async(&self.http)
            .await
            .map_err(revocation_error)
    }
}

fn token_set(response: BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(response.access_token().secret().to_owned()),
        refresh_token: response
            .refresh_token()
            .map(|t| SecretString::from(t.secret().to_owned())),
        token_type: response.token_type().as_ref().to_owned(),
        expires_in: response.expires_in(),
        scopes: response
            .scopes()
            .map(|scopes| scopes.iter().map(|s| s.to_string()).collect()),
    }
}

fn token_error(error: RequestTokenError<TransportError, BasicErrorResponse>) -> OAuthError {
    match error {
        RequestTokenError::ServerResponse(answer) => OAuthError::Refused {
            code: answer.error().as_ref().to_owned(),
        },
        other => transport_failure(other),
    }
}

fn revocation_error(
    error: RequestTokenError<TransportError, StandardErrorResponse<RevocationErrorResponseType>>,
) -> OAuthError {
    match error {
        RequestTokenError::ServerResponse(answer) => OAuthError::Refused {
            code: answer.error().as_ref().to_owned(),
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
        RequestTokenError::Request(TransportError::Outbound(OutboundError::Timeout)) => {
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
