//! The one way an API key is checked: at the connect page, at
//! `PUT /connections/{id}/api-key` and by the background upkeep. The whole
//! check is bounded (the API client only bounds each read), so an API that
//! trickles its answer cannot hold a form, a backend call or an upkeep batch.

use std::time::Duration;

use secrecy::SecretString;

use super::CredentialError;
use crate::emailoctopus_api::{EmailOctopusApi, KeyCheckError};
use crate::metrics::Metrics;

#[derive(Clone)]
pub(super) struct KeyChecker {
    api: EmailOctopusApi,
    metrics: Metrics,
    /// The longest one check may take.
    limit: Duration,
}

impl KeyChecker {
    pub(super) fn new(api: EmailOctopusApi, metrics: Metrics, limit: Duration) -> Self {
        Self {
            api,
            metrics,
            limit,
        }
    }

    /// Asks the API whether it accepts `key` (`GET {API_BASE_URL}/lists`):
    /// `KeyRefused` when it says no, `KeyCheckFailed` when it cannot say.
    pub(super) async fn check(&self, key: &SecretString) -> Result<(), CredentialError> {
        let checked = tokio::time::timeout(self.limit, self.api.check_key(key))
            .await
            .map_err(|_| {
                CredentialError::KeyCheckFailed("the API did not answer in time".into())
            })?;
        checked.map_err(|e| match e {
            KeyCheckError::Refused(_) => {
                self.metrics.api_key_refused();
                CredentialError::KeyRefused
            }
            other => CredentialError::KeyCheckFailed(other.to_string()),
        })
    }
}
