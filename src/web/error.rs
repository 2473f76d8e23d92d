//! `PageError`: everything a browser route can fail with, and the one place
//! that decides its status and words. The detail goes to the log, never to the page.

use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::Response;

use super::page::Pages;
use crate::connections::CredentialError;
use crate::oauth::{FlowError, OAuthError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("form body over 64 KiB")]
    TooLarge,
    #[error("no usable connect session")]
    NoSession,
    #[error("the form's CSRF token did not match")]
    Csrf,
    #[error("callback without a matching flow: {0}")]
    Flow(#[from] FlowError),
    #[error("callback state used already")]
    Replayed,
    #[error("callback iss missing or different")]
    WrongIssuer,
    #[error("the user declined")]
    Declined,
    #[error("the provider answered error={code}")]
    ProviderError {
        code: String,
        description: Option<String>,
    },
    #[error("callback without a code")]
    MissingCode,
    #[error("the API refused the key")]
    KeyRefused,
    #[error("the API refused the key, the last one this connect link allows")]
    KeyAttemptsUsedUp,
    #[error("credential: {0}")]
    Credential(CredentialError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl From<FormRejection> for PageError {
    fn from(rejection: FormRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            PageError::TooLarge
        } else {
            PageError::Malformed("form")
        }
    }
}

impl From<CredentialError> for PageError {
    fn from(error: CredentialError) -> Self {
        match error {
            CredentialError::KeyRefused => PageError::KeyRefused,
            other => PageError::Credential(other),
        }
    }
}

impl PageError {
    fn explain(&self) -> (StatusCode, &'static str, &'static str, Option<&str>) {
        use StatusCode as S;
        match self {
            Self::Malformed(_) => (S::BAD_REQUEST, "Something is wrong with this request", "The request was malformed. Start again from the connect page.", None),
            Self::TooLarge => (S::PAYLOAD_TOO_LARGE, "Too much data", "The form was larger than this page accepts.", None),
            Self::NoSession => (S::FORBIDDEN, "This connect link cannot be used", "This connect link is missing, already used or expired. Ask the app for a new one.", None),
            Self::Csrf => (S::FORBIDDEN, "Please try again", "The form had expired or did not come from this page. Reload the connect page and try again.", None),
            Self::Flow(FlowError::Expired) => (S::BAD_REQUEST, "The connection was not made", "The sign-in took longer than 10 minutes. Please start again.", None),
            Self::Flow(_) => (S::BAD_REQUEST, "The connection was not made", "This answer does not belong to a sign-in started in this browser, or that sign-in expired. Please start again from the connect page.", None),
            Self::Replayed => (S::BAD_REQUEST, "The connection was not made", "This sign-in was already finished; it cannot be used twice. Start again if you need to.", None),
            Self::WrongIssuer => (S::BAD_REQUEST, "The connection was not made", "The answer did not come from the expected authorization server, so it was ignored.", None),
            Self::Declined => (S::BAD_REQUEST, "You declined", "You declined the connection, so nothing was connected. You can start again whenever you like.", None),
            Self::ProviderError { description, .. } => (S::BAD_REQUEST, "The connection was not made", "The provider did not authorize the connection.", description.as_deref()),
            Self::MissingCode => (S::BAD_REQUEST, "The connection was not made", "The provider's answer carried no authorization code. Please start again.", None),
            Self::KeyRefused => (S::UNPROCESSABLE_ENTITY, "API key refused", "EmailOctopus refused this API key, so it was not saved. Check the key and try again.", None),
            Self::KeyAttemptsUsedUp => (S::TOO_MANY_REQUESTS, "This connect link is used up", "EmailOctopus refused this API key too, and this link allows no more tries. Nothing was saved. Ask the app for a new link.", None),
            Self::Credential(CredentialError::Provider(OAuthError::Refused { .. })) => (S::BAD_REQUEST, "The connection was not made", "The provider refused the authorization code (it may have expired or been used). Please start again.", None),
            Self::Credential(CredentialError::Provider(OAuthError::Timeout)) => (S::GATEWAY_TIMEOUT, "The provider did not answer", "The provider did not answer in time. Please try again in a moment.", None),
            Self::Credential(CredentialError::Provider(OAuthError::Failed(_))) => (S::BAD_GATEWAY, "The provider failed", "The provider could not be reached or gave an unusable answer. Please try again later.", None),
            Self::Credential(CredentialError::KeyCheckFailed(_)) => (S::BAD_GATEWAY, "EmailOctopus could not be reached", "The key could not be checked because the EmailOctopus API could not be reached. Nothing was saved; please try again.", None),
            Self::Credential(_) | Self::Store(_) => (S::SERVICE_UNAVAILABLE, "Something went wrong on our side", "The connection could not be saved right now. Please try again in a moment.", None),
        }
    }
}

impl PageError {
    /// The page this error becomes. The detail is logged here because this is
    /// where it is dropped from the answer.
    pub fn into_page(self, pages: &Pages) -> Response {
        let (status, title, text, detail) = self.explain();
        if status.is_server_error() {
            tracing::warn!(error = %self, "browser request failed");
        } else {
            tracing::info!(error = %self, "browser request refused");
        }
        pages.message(status, title, text, detail)
    }
}
