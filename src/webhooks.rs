//! Connection events POSTed to `WEBHOOK_URL`, signed with HMAC-SHA256 and
//! retried with backoff in the background: a webhook never blocks or fails
//! the flow that caused it.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::Sha256;
use tokio_util::task::TaskTracker;

use crate::checked::{ConnectionId, ConnectionKind};
use crate::clock::{rfc3339, Clock};
use crate::config::WebhookSettings;
use crate::crypto::to_hex;

/// At most this many attempts per event (the contract: 10).
pub const MAX_ATTEMPTS: u32 = 10;
/// Each wait is twice the one before, up to this many times the first.
const MAX_BACKOFF_FACTOR: u32 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Event {
    #[serde(rename = "connection.created")]
    Created,
    #[serde(rename = "connection.needs_reauth")]
    NeedsReauth,
    #[serde(rename = "connection.deleted")]
    Deleted,
    /// A connection that needed a person is connected again.
    #[serde(rename = "connection.recovered")]
    Recovered,
    /// Refreshes failed (not refused) several times in a row.
    #[serde(rename = "connection.refresh_failing")]
    RefreshFailing,
}

#[derive(Serialize)]
struct Payload<'a> {
    event: Event,
    connection_id: &'a str,
    kind: ConnectionKind,
    at: String,
    /// Why a connection needs re-authorization.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Clone)]
pub struct Webhooks {
    target: Option<WebhookSettings>,
    http: reqwest::Client,
    clock: Clock,
    /// Deliveries in flight, so that a shutdown can let them finish.
    deliveries: TaskTracker,
}

impl Webhooks {
    pub fn new(target: Option<WebhookSettings>, http: reqwest::Client, clock: Clock) -> Self {
        Self {
            target,
            http,
            clock,
            deliveries: TaskTracker::new(),
        }
    }

    /// Waits, at most `grace`, for the deliveries in flight (a shutdown):
    /// events that are still being retried after that are given up, logged.
    pub async fn finish(&self, grace: Duration) {
        self.deliveries.close();
        if tokio::time::timeout(grace, self.deliveries.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pending = self.deliveries.len(),
                "shutting down with webhooks still being retried; they are not sent"
            );
        }
    }

    /// Sends the event in the background; returns at once.
    pub fn emit(&self, event: Event, id: &ConnectionId, kind: ConnectionKind) {
        self.send(event, id, kind, None);
    }

    /// `connection.needs_reauth` with its reason (`refresh_rejected`, `api_key_rejected`).
    pub fn emit_needs_reauth(&self, id: &ConnectionId, kind: ConnectionKind, reason: &str) {
        self.send(Event::NeedsReauth, id, kind, Some(reason));
    }

    fn send(&self, event: Event, id: &ConnectionId, kind: ConnectionKind, reason: Option<&str>) {
        let Some(WebhookSettings {
            url,
            secret,
            retry_base,
        }) = self.target.clone()
        else {
            return;
        };
        let body = serde_json::to_vec(&Payload {
            event,
            connection_id: id.as_str(),
            kind,
            at: rfc3339(self.clock.now()),
            reason,
        })
        .expect("an event serialises");
        let signature = format!("sha256={}", sign(secret.expose_secret().as_bytes(), &body));
        let http = self.http.clone();
        let id = id.clone();
        self.deliveries.spawn(async move {
            let mut backoff = retry_base;
            for attempt in 1..=MAX_ATTEMPTS {
                let sent = http
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .header("x-signature-256", &signature)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(answer) if answer.status().is_success() => return,
                    Ok(answer) => {
                        tracing::warn!(connection = %id, ?event, attempt, status = answer.status().as_u16(), "webhook refused")
                    }
                    Err(error) => {
                        tracing::warn!(connection = %id, ?event, attempt, error = %error.without_url(), "webhook failed")
                    }
                }
                if attempt < MAX_ATTEMPTS {
                    tokio::time::sleep(jittered(backoff)).await;
                    backoff = (backoff * 2).min(retry_base * MAX_BACKOFF_FACTOR);
                }
            }
            tracing::error!(connection = %id, ?event, "webhook given up after {MAX_ATTEMPTS} attempts");
        });
    }
}

/// Between half the backoff and all of it, so that many deliveries that
/// failed together (a receiver that was down) do not retry together.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0))
}

/// Hex HMAC-SHA256 of `body` under `key`: what `X-Signature-256` carries.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    to_hex(&mac.finalize().into_bytes())
}
