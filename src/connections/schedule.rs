//! When a credential is due: for a caller (the contract's 60 s margin) and
//! for the background upkeep (a wider margin, the idle refresh, key checks).
//! Both margins shrink to half a token's lifetime for short-lived tokens, so
//! a token is refreshed about once per lifetime, never on every call.

use rand::Rng;

use super::REFRESH_MARGIN_SECS;
use crate::checked::ConnectionKind;
use crate::clock::UnixTime;
use crate::config::MaintenanceSettings;
use crate::store::{ConnectionRow, SealedCredential};

/// Transient refresh failures are retried after this long, doubling per
/// failure in a row, up to `MAX_RETRY_SECS`.
const FIRST_RETRY_SECS: i64 = 30;
const MAX_RETRY_SECS: i64 = 60 * 60;

/// `margin`, or half the lifetime when that is shorter.
fn margin_for(lifetime: i64, margin: i64) -> i64 {
    margin.min(lifetime / 2).max(0)
}

/// The margins and intervals of the upkeep's settings.
#[derive(Clone, Copy)]
pub(super) struct Schedule(pub(super) MaintenanceSettings);

impl Schedule {
    /// When a caller would find the row's access token due (never for an API
    /// key or a token without an expiry). The lifetime counts from the
    /// token's issue, which is the row's last credential write.
    pub(super) fn due_at(self, row: &ConnectionRow) -> Option<UnixTime> {
        if row.kind != ConnectionKind::Oauth {
            return None;
        }
        let expires_at = row.expires_at?;
        Some(expires_at - margin_for(expires_at - row.updated_at, REFRESH_MARGIN_SECS))
    }

    /// When the background upkeep should refresh tokens issued at
    /// `issued_at`: ahead of expiry by the refresh-ahead margin, and at least
    /// every half of the provider's idle refresh-token expiry. Never without
    /// a refresh token.
    pub(super) fn ahead_due_at(
        self,
        expires_at: Option<UnixTime>,
        issued_at: UnixTime,
        refreshable: bool,
    ) -> Option<UnixTime> {
        if !refreshable {
            return None;
        }
        let idle = issued_at + self.0.idle_refresh_every.as_secs() as i64;
        let ahead = self.0.refresh_ahead.as_secs() as i64;
        Some(expires_at.map_or(idle, |expires_at| {
            (expires_at - margin_for(expires_at - issued_at, ahead)).min(idle)
        }))
    }

    /// `ahead_due_at` for a credential about to be stored.
    pub(super) fn refresh_ahead_at(
        self,
        credential: &SealedCredential,
        issued_at: UnixTime,
    ) -> Option<UnixTime> {
        self.ahead_due_at(
            credential.expires_at,
            issued_at,
            credential.sealed_refresh_token.is_some(),
        )
    }

    /// `ahead_due_at` for a stored row.
    pub(super) fn row_ahead_due_at(self, row: &ConnectionRow) -> Option<UnixTime> {
        self.ahead_due_at(
            row.expires_at,
            row.updated_at,
            row.sealed_refresh_token.is_some(),
        )
    }

    /// The next check of an API key: one interval on, plus up to a tenth
    /// more, so keys saved together are not all checked together (and a key
    /// is never checked twice within one interval).
    pub(super) fn next_key_check(self, now: UnixTime) -> UnixTime {
        let every = self.0.api_key_check_every.as_secs() as i64;
        let spread = every / 10;
        now + every + rand::thread_rng().gen_range(0..=spread)
    }

    /// When to try again after `failures` transient refresh failures in a row.
    pub(super) fn retry_at(now: UnixTime, failures: i64) -> UnixTime {
        let doublings = u32::try_from(failures.clamp(1, 8) - 1).unwrap_or(0);
        now + (FIRST_RETRY_SECS << doublings).min(MAX_RETRY_SECS)
    }
}
