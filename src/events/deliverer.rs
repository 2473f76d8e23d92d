//! The deliverer: each process runs one. It claims events that are due (a
//! lease on each, so two deliverers never send one event at the same time,
//! and a dead one's claims expire), POSTs them to `WEBHOOK_URL` a few at a
//! time, and records every attempt. It is woken when this process writes an
//! event, and looks for others' events and for retries every poll interval.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{watch, Notify};

use super::payload::body;
use super::schedule::{wait_after, MAX_ATTEMPTS};
use crate::clock::{Clock, UnixMillis};
use crate::config::{EventSettings, WebhookSettings};
use crate::crypto::random_token;
use crate::metrics::Metrics;
use crate::store::{Attempt, AttemptError, AttemptRecord, DeliveryState, EventRow, Store};

/// Events claimed at once.
const BATCH: i64 = 32;
/// Deliveries in flight at once, per process.
const CONCURRENCY: usize = 8;
/// How long after this process writes an event its deliverer looks.
const COALESCE: Duration = Duration::from_millis(10);
/// Finished events pruned per pass.
const PRUNE_BATCH: i64 = 1000;
/// How often finished events past their retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub struct Deliverer {
    store: Store,
    target: Option<WebhookSettings>,
    http: reqwest::Client,
    clock: Clock,
    metrics: Metrics,
    settings: EventSettings,
    /// Notified after a commit that wrote events.
    written: Arc<Notify>,
    /// Names this process's leases.
    owner: String,
    /// A claim lasts this long: past the longest time the last event of a
    /// batch can wait for its turn and then take.
    lease: Duration,
}

/// How one attempt went.
enum Answer {
    Delivered(u16),
    Refused(u16),
    Failed(AttemptError),
}

impl Deliverer {
    pub fn new(
        store: Store,
        target: Option<WebhookSettings>,
        http: reqwest::Client,
        attempt_timeout: Duration,
        clock: Clock,
        metrics: Metrics,
        settings: EventSettings,
    ) -> Self {
        Self {
            written: store.events_written(),
            store,
            target,
            http,
            clock,
            metrics,
            settings,
            owner: random_token(),
            lease: attempt_timeout * ((BATCH as u32).div_ceil(CONCURRENCY as u32) + 1),
        }
    }

    /// Delivers until `stopped` turns true; attempts in flight then finish
    /// (the caller bounds how long it waits), and what is still due stays
    /// in the outbox for the next start or another instance.
    pub async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        // On this process's clock, like the retention it keeps.
        let mut last_prune: Option<UnixMillis> = None;
        loop {
            if let Some(target) = &self.target {
                while self.deliver_due(target).await == BATCH as usize {
                    let stopping = *stopped.borrow();
                    if stopping {
                        return;
                    }
                }
            }
            let now = self.clock.now_millis();
            if last_prune.is_none_or(|at| now - at >= millis(PRUNE_EVERY)) {
                self.prune().await;
                last_prune = Some(now);
            }
            let woken = tokio::select! {
                _ = self.written.notified() => true,
                _ = tokio::time::sleep(self.settings.poll) => false,
                _ = stopped.wait_for(|s| *s) => return,
            };
            if woken {
                // Events written in a burst are claimed and recorded
                // together: a moment's wait costs each little and saves
                // the database a claim and a record per event.
                tokio::time::sleep(COALESCE).await;
            }
        }
    }

    /// One batch of due events, attempted a few at a time and recorded
    /// together; how many were claimed.
    async fn deliver_due(&self, target: &WebhookSettings) -> usize {
        let now = self.clock.now_millis();
        let until = now + millis(self.lease);
        let claimed = match self
            .store
            .claim_due_events(now, &self.owner, until, BATCH)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "events: could not claim due events");
                return 0;
            }
        };
        // Each attempt owns its copy: a future borrowing the batch would
        // not be `Send` through the stream's higher-ranked closure.
        let records: Vec<AttemptRecord> = futures_util::stream::iter(claimed.clone())
            .map(|event| self.attempt(target, event))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let attempts: Vec<_> = claimed.iter().zip(records).collect();
        match self.store.record_attempts(&self.owner, &attempts).await {
            Ok(held) if held < attempts.len() as u64 => {
                tracing::warn!(lost = attempts.len() as u64 - held, "leases ran out during their deliveries; another deliverer may send those events again")
            }
            Ok(_) => {}
            // The leases run out and the events are sent again: at least once.
            Err(error) => tracing::warn!(%error, "could not record delivery attempts"),
        }
        claimed.len()
    }

    /// Sends one event; what its event should become.
    async fn attempt(&self, target: &WebhookSettings, event: EventRow) -> AttemptRecord {
        let answer = self.send(target, &event).await;
        let at = self.clock.now_millis();
        let tries = event.tries + 1;
        let (state, next_attempt_at) = match answer {
            Answer::Delivered(_) => (DeliveryState::Delivered, None),
            _ => match wait_after(tries, target.retry_base) {
                Some(wait) => (DeliveryState::Pending, Some(at + millis(wait))),
                None => (DeliveryState::Failed, None),
            },
        };
        let (status_code, error, outcome) = match answer {
            Answer::Delivered(status) => (Some(status), None, "delivered"),
            Answer::Refused(status) => (Some(status), None, "refused"),
            Answer::Failed(category) => (None, Some(category), "failed"),
        };
        self.metrics.event_delivery(outcome);
        let (id, event_type) = (&event.id, event.event.as_str());
        match state {
            DeliveryState::Delivered => {
                tracing::debug!(event = %id, event_type, tries, "event delivered")
            }
            DeliveryState::Failed => {
                self.metrics.event_given_up();
                tracing::error!(event = %id, event_type, connection = %event.connection_id, ?status_code, ?error, "webhook given up after {MAX_ATTEMPTS} attempts; POST /events/{{id}}/redeliver sends it again")
            }
            _ => {
                tracing::warn!(event = %id, event_type, tries, ?status_code, ?error, "webhook not delivered; it will be retried")
            }
        }
        AttemptRecord {
            attempt: Attempt {
                at,
                status_code,
                error,
            },
            state,
            next_attempt_at,
        }
    }

    /// Gives back the leases of attempts that a stop cut short.
    pub async fn release_leases(&self) {
        match self.store.release_event_leases(&self.owner).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "events cut short by the stop are free to be sent again"
            ),
            Err(error) => {
                tracing::warn!(%error, "events: could not give back leases; they expire by themselves")
            }
        }
    }

    async fn send(&self, target: &WebhookSettings, event: &EventRow) -> Answer {
        let body = body(event);
        let timestamp = self.clock.now();
        let sent = self
            .http
            .post(target.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", event.id.as_str())
            .header("webhook-timestamp", timestamp)
            .header(
                "webhook-signature",
                target
                    .keys
                    .standard_signature(event.id.as_str(), timestamp, &body),
            )
            .header("x-signature-256", target.keys.body_signature(&body))
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => {
                Answer::Delivered(answer.status().as_u16())
            }
            Ok(answer) => Answer::Refused(answer.status().as_u16()),
            Err(error) if error.is_timeout() => Answer::Failed(AttemptError::Timeout),
            Err(error) if error.is_connect() => Answer::Failed(AttemptError::Unreachable),
            Err(_) => Answer::Failed(AttemptError::BrokenAnswer),
        }
    }

    /// In batches, so that no one statement holds the table for long.
    async fn prune(&self) {
        let before = self.clock.now_millis() - millis(self.settings.retention);
        let mut pruned = 0;
        loop {
            match self.store.prune_events(before, PRUNE_BATCH).await {
                Ok(batch) => {
                    pruned += batch;
                    if batch < PRUNE_BATCH as u64 {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "events: could not prune old events");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(pruned, "events past their retention were pruned");
        }
    }
}

fn millis(duration: Duration) -> UnixMillis {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
