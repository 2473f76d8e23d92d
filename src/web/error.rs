//! `PageError`: everything a browser route can fail with, and the one place
//! that decides its status and words. A handler returns it like any answer;
//! `render_page_error`, called by the middleware every answer goes through,
//! turns it into a page (with the banner and a way back) and
//! hands its detail to the request's log line. The detail never reaches the page.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::connections::{CredentialError, GuessLimit, TooManyGuesses};
use crate::oauth::{ClaimError, FlowError, OAuthError};
use crate::page::{BackLink, Pages};
use crate::request_log::FailureDetail;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("no route at this path")]
    NotFound,
    #[error("the route does not take this method")]
    MethodNotAllowed,
    #[error("a browser route asked for by a Host that is not one of this server's names")]
    WrongHost,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("form body over 64 KiB")]
    TooLarge,
    #[error("no usable connect session")]
    NoSession,
    #[error("OAuth is not configured")]
    OAuthNotConfigured,
    #[error("the form's CSRF token did not match")]
    Csrf,
    #[error("the operator's page is off: no ADMIN_TOKEN")]
    AdminOff,
    #[error("sign-in with a wrong admin token")]
    AdminTokenWrong,
    #[error("the operator's page without a signed-in session")]
    AdminSignInNeeded,
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
    #[error("key not checked: too many refused for this {}", .0.by.as_str())]
    TooManyGuesses(TooManyGuesses),
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

impl From<ClaimError> for PageError {
    fn from(error: ClaimError) -> Self {
        match error {
            ClaimError::Replayed => PageError::Replayed,
            ClaimError::Store(error) => PageError::Store(error),
        }
    }
}

impl From<CredentialError> for PageError {
    fn from(error: CredentialError) -> Self {
        match error {
            CredentialError::KeyRefused => PageError::KeyRefused,
            CredentialError::TooManyGuesses(limited) => PageError::TooManyGuesses(limited),
            CredentialError::OAuthNotConfigured => PageError::OAuthNotConfigured,
            other => PageError::Credential(other),
        }
    }
}

/// What a person reads: a title, what happened and what to do next.
struct Explanation {
    status: StatusCode,
    title: &'static str,
    text: &'static str,
}

impl PageError {
    fn explain(&self) -> Explanation {
        use StatusCode as S;
        let (status, title, text) = match self {
            Self::NotFound => (S::NOT_FOUND, "Not found", "There is nothing at this address."),
            Self::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "Method not allowed", "This address does not take that kind of request."),
            Self::WrongHost => (S::MISDIRECTED_REQUEST, "Wrong address", "This page answers only at its own address. Open the link the app gave you as it is."),
            Self::Malformed(_) => (S::BAD_REQUEST, "Something is wrong with this link", "This address is incomplete or damaged. Open the connect link again, exactly as your app gave it to you."),
            Self::TooLarge => (S::PAYLOAD_TOO_LARGE, "Too much text", "What you sent was larger than this page accepts. An API key is much shorter: paste only the key and try again."),
            Self::NoSession => (S::FORBIDDEN, "This connect link cannot be used", "This connect link is missing, has already been used, or has expired. Ask the app you are connecting for a new link."),
            Self::OAuthNotConfigured => (S::NOT_FOUND, "OAuth is not configured", "OAuth is not configured on this server, so it cannot sign you in to EmailOctopus; it connects with an API key instead. Go back to the connect page and paste an API key."),
            Self::AdminOff => (S::NOT_FOUND, "The operator's page is off", "This server has no ADMIN_TOKEN, so nobody can sign in to its operator's page. Set ADMIN_TOKEN (make one with `emailoctopus-connect gen-token`) and restart it."),
            Self::AdminTokenWrong => (S::UNAUTHORIZED, "Not signed in", "That is not this server's admin token. Nothing was changed."),
            Self::AdminSignInNeeded => (S::FORBIDDEN, "Sign in first", "This page is for the server's operator. Sign in with the admin token, then try again."),
            Self::Csrf => (S::FORBIDDEN, "Please try again", "The page had been open too long, or the form did not come from this page. Go back, reload the page and try again."),
            Self::Flow(FlowError::Expired) => (S::BAD_REQUEST, "The connection was not made", "The sign-in took longer than 10 minutes, so it was stopped for your safety. Please start again."),
            Self::Flow(_) => (S::BAD_REQUEST, "The connection was not made", "This sign-in was not started in this browser, or it was started too long ago. Please start again from the connect link, in the same browser."),
            Self::Replayed => (S::BAD_REQUEST, "The connection was not made", "This sign-in was already finished, and it cannot be used twice. If you are not connected, start again."),
            Self::WrongIssuer => (S::BAD_REQUEST, "The connection was not made", "The answer did not come from the expected sign-in service, so it was ignored for your safety. Please start again."),
            Self::Declined => (S::BAD_REQUEST, "You declined", "You chose not to allow the connection, so nothing was connected. You can connect whenever you like."),
            Self::ProviderError { .. } => (S::BAD_REQUEST, "The connection was not made", "The sign-in service did not allow the connection. Please start again, or ask the app for help."),
            Self::MissingCode => (S::BAD_REQUEST, "The connection was not made", "The sign-in service sent an incomplete answer. Please start again."),
            Self::KeyRefused => (S::UNPROCESSABLE_ENTITY, "API key refused", "EmailOctopus did not accept this API key, so it was not saved. Check that you copied the whole key, or create a new one, and try again."),
            Self::KeyAttemptsUsedUp => (S::TOO_MANY_REQUESTS, "This connect link is used up", "EmailOctopus did not accept this API key either, and this link allows no more tries. Nothing was saved. Ask the app you are connecting for a new link."),
            Self::TooManyGuesses(TooManyGuesses { by: GuessLimit::Client, .. }) => (S::TOO_MANY_REQUESTS, "Too many refused API keys", "EmailOctopus has refused too many API keys sent from your network lately, so this one was not checked and nothing was saved. Wait a few minutes, check that you copy the whole key, and try again."),
            Self::TooManyGuesses(TooManyGuesses { by: GuessLimit::Connection, .. }) => (S::TOO_MANY_REQUESTS, "Too many refused API keys", "EmailOctopus has refused too many API keys for this connection lately, so this one was not checked and nothing was saved. Wait a few minutes, check that you copy the whole key, and try again."),
            Self::Credential(CredentialError::Provider(OAuthError::Refused { .. })) => (S::BAD_REQUEST, "The connection was not made", "The sign-in service did not accept the sign-in; it may have taken too long. Please start again."),
            Self::Credential(CredentialError::Provider(OAuthError::Timeout)) => (S::GATEWAY_TIMEOUT, "The sign-in service did not answer", "The sign-in service took too long to answer. Please try again in a moment."),
            Self::Credential(CredentialError::Provider(OAuthError::Failed(_))) => (S::BAD_GATEWAY, "The sign-in service is not available", "The sign-in service could not be reached or did not answer properly. Nothing was changed; please try again later."),
            Self::Credential(CredentialError::KeyCheckFailed(_)) => (S::BAD_GATEWAY, "EmailOctopus could not be reached", "The key could not be checked because EmailOctopus did not answer. Nothing was saved; please try again in a moment."),
            Self::Credential(_) | Self::Store(_) => (S::SERVICE_UNAVAILABLE, "Something went wrong on our side", "The connection could not be saved right now. Nothing was changed; please try again in a moment."),
        };
        Explanation {
            status,
            title,
            text,
        }
    }

    /// Where the page's "back" link leads unless the handler chose: the
    /// operator's page from its own routes, else the connect page of the
    /// request's session, except at a wrong host, where a link to this
    /// server would lead to the same wrong name.
    fn back(&self, uri: &Uri) -> BackLink {
        match self {
            Self::WrongHost => BackLink::None,
            _ if crate::web::admin::is_admin_path(uri.path()) => BackLink::Admin,
            _ => BackLink::ConnectPage {
                session: super::session_in_query::session_in_query(uri),
            },
        }
    }

    /// The provider's own words, shown quoted (they are escaped, and were
    /// checked for length and characters when the callback was parsed).
    fn provider_words(&self) -> Option<&str> {
        match self {
            Self::ProviderError { description, .. } => description.as_deref(),
            _ => None,
        }
    }
}

/// The error travels in the answer's extensions to `render_page_error`, as
/// axum's error-handling example does; the answer itself has no side effects.
impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.explain().status;
        let mut response = status.into_response();
        response.extensions_mut().insert(Arc::new(self));
        response
    }
}

/// Turns a `PageError` answer into its page, keeping the headers the
/// handler set (a cookie that ends a flow), and hands its detail to the
/// request's one log line; any other answer passes untouched. The "back"
/// link keeps the connect session of the request (`uri`) unless the handler
/// chose another one; a handler that answers a popup passes its `Pages`.
pub fn render_page_error(pages: &Pages, uri: &Uri, response: Response) -> Response {
    let Some(error) = response.extensions().get::<Arc<PageError>>().cloned() else {
        return response;
    };
    let Explanation {
        status,
        title,
        text,
    } = error.explain();
    let back = response
        .extensions()
        .get::<BackLink>()
        .cloned()
        .unwrap_or_else(|| error.back(uri));
    let pages = response
        .extensions()
        .get::<Pages>()
        .unwrap_or(pages)
        .clone();
    let (mut parts, _) = response.into_parts();
    let page = pages.message(status, title, text, error.provider_words(), &back);
    let (page_parts, body) = page.into_parts();
    parts.headers.extend(page_parts.headers);
    let mut response = Response::from_parts(parts, body);
    FailureDetail::attach(&mut response, &error);
    response
}
