//! Connection events, never lost: each is written to the outbox in the
//! same transaction as the change that caused it (`store::events`), then
//! delivered to `WEBHOOK_URL` at least once, across restarts and instances
//! (`deliverer.rs`, on the schedule in `schedule.rs`), signed both as
//! `X-Signature-256` and as Standard Webhooks (`signature.rs`). The outbox
//! can also be read in order, so a backend can catch up by polling.

mod deliverer;
mod log;
mod payload;
mod schedule;
mod signature;

pub use deliverer::Deliverer;
pub use log::{EventLog, RedeliveryError};
pub use signature::{sign, WebhookKeys};

use crate::checked::{EventId, EventType};
use crate::clock::Clock;
use crate::store::NewEvent;

/// Makes the events that the credential rules record with their changes.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Whether a webhook is configured: otherwise events are kept for polling only.
    deliver: bool,
    clock: Clock,
}

impl Outbox {
    pub fn new(deliver: bool, clock: Clock) -> Self {
        Self { deliver, clock }
    }

    pub fn event(&self, event: EventType) -> NewEvent {
        NewEvent {
            id: EventId::new(),
            event,
            reason: None,
            at: self.clock.now_millis(),
            deliver: self.deliver,
        }
    }

    /// `connection.needs_reauth` with its reason (`refresh_rejected`, `api_key_rejected`).
    pub fn needs_reauth(&self, reason: &'static str) -> NewEvent {
        NewEvent {
            reason: Some(reason),
            ..self.event(EventType::NeedsReauth)
        }
    }
}
