//! The one way an API key is checked: at the connect page, at
//! `PUT /connections/{id}/api-key` and by the background upkeep. The whole
//! check is bounded (the API client only bounds each read), so an API that
//! trickles its answer cannot hold a form, a backend call or an upkeep batch;
//! and a key offered from outside spends its guesser's budget when the API
//! refuses it (`guesses.rs`), so the API is not asked again once that is spent.

use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use super::guesses::{GuessLimits, Guesser};
use super::CredentialError;
use crate::emailoctopus_api::{EmailOctopusApi, KeyCheckError};
use crate::metrics::Metrics;

#[derive(Clone)]
pub(super) struct KeyChecker {
    api: EmailOctopusApi,
    metrics: Metrics,
    /// The longest one check may take.
    limit: Duration,
    guesses: GuessLimits,
}

impl KeyChecker {
    pub(super) fn new(api: EmailOctopusApi, metrics: Metrics, limit: Duration) -> Self {
        Self {
            api,
            metrics,
            limit,
            guesses: GuessLimits::default(),
        }
    }

    /// Asks the API whether it accepts `key` (`GET {API_BASE_URL}/lists`):
    /// `KeyRefused` when it says no, `KeyCheckFailed` when it cannot say,
    /// `TooManyGuesses` without asking when `guesser` has had too many refused.
    pub(super) async fn check(
        &self,
        key: &SecretString,
        guesser: Guesser<'_>,
    ) -> Result<(), CredentialError> {
        let reservation = self
            .guesses
            .reserve(guesser, Instant::now())
            .map_err(|limited| {
                self.metrics.api_key_guesses_limited(limited.by.as_str());
                CredentialError::TooManyGuesses(limited)
            })?;
        let checked = tokio::time::timeout(self.limit, self.api.check_key(key))
            .await
            .map_err(|_| {
                CredentialError::KeyCheckFailed("the API did not answer in time".into())
            })?;
        checked.map_err(|e| match e {
            KeyCheckError::Refused(_) => {
                reservation.spend();
                self.metrics.api_key_refused();
                CredentialError::KeyRefused
            }
            other => CredentialError::KeyCheckFailed(other.to_string()),
        })
    }
}
