//! The sandbox's provider: an authorization server and a fake EmailOctopus
//! API that share what they issued. `--sandbox` mounts its routers on the
//! server's listener; the integration tests mount them on one of their own.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;

use super::authorize::{self, AuthorizationRequest};
use super::bounded::Bounded;
use super::settings::Settings;
use super::{api, token};
use crate::clock::Clock;
use crate::page::Pages;

/// The provider; clones share one state.
#[derive(Clone)]
pub struct Provider {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    settings: Mutex<Settings>,
    pub(super) clock: Clock,
    pub(super) pages: Pages,
    issued: Mutex<Issued>,
}

#[derive(Default)]
pub(super) struct Issued {
    /// Authorization requests waiting for Approve or Deny, by a single-use id.
    pub(super) consents: Bounded<AuthorizationRequest>,
    /// Codes, kept (used) until they expire so that a replay is recognised.
    pub(super) codes: Bounded<CodeGrant>,
    pub(super) access_tokens: Bounded<()>,
    pub(super) refresh_tokens: Bounded<()>,
}

/// What a code was issued for.
pub(super) struct CodeGrant {
    /// As the authorization request named it: the exchange must name it alike.
    pub(super) redirect_uri: String,
    /// `None` when PKCE was not asked for.
    pub(super) code_challenge: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) used: bool,
    /// Tokens issued for this code: revoked if the code is replayed (RFC 6749 §4.1.2).
    pub(super) issued: Vec<String>,
}

impl Shared {
    /// The settings as they are now, for one request.
    pub(super) fn settings(&self) -> Settings {
        self.settings
            .lock()
            .expect("sandbox settings are never poisoned")
            .clone()
    }

    pub(super) fn issued(&self) -> MutexGuard<'_, Issued> {
        self.issued.lock().expect("sandbox state is never poisoned")
    }
}

impl Provider {
    /// `pages` renders its consent and error pages; `clock` decides expiry.
    pub fn new(settings: Settings, clock: Clock, pages: Pages) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings: Mutex::new(settings),
                clock,
                pages,
                issued: Mutex::new(Issued::default()),
            }),
        }
    }

    /// The authorization server: `/authorize` (the consent page and its
    /// answer), `/token` and `/revoke` (RFC 7009).
    pub fn oauth_router(&self) -> Router {
        Router::new()
            .route(
                "/authorize",
                get(authorize::authorize).post(authorize::decide),
            )
            .route("/token", post(token::token))
            .route("/revoke", post(token::revoke))
            .with_state(self.shared.clone())
    }

    /// The fake API: `GET /lists`, and the routes of `more` (the tests add
    /// an echo), each behind the check that the Bearer is an access token
    /// this provider issued or its API key.
    pub fn api_router(&self, more: Router) -> Router {
        Router::new()
            .route("/lists", get(api::lists))
            .merge(more)
            .route_layer(from_fn_with_state(
                self.shared.clone(),
                api::require_credential,
            ))
    }

    /// Changes how it behaves from the next request on, as a provider
    /// changes its policy; what it issued stays issued.
    pub fn change(&self, change: impl FnOnce(&mut Settings)) {
        change(
            &mut self
                .shared
                .settings
                .lock()
                .expect("sandbox settings are never poisoned"),
        );
    }

    /// The access and the refresh tokens it issued and still honours, oldest first.
    pub fn live_tokens(&self) -> (Vec<String>, Vec<String>) {
        let issued = self.shared.issued();
        let now = self.shared.clock.now();
        (
            issued.access_tokens.live_keys(now),
            issued.refresh_tokens.live_keys(now),
        )
    }
}
