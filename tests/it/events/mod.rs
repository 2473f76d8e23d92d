//! Connection events, never lost: signed deliveries a stock Standard
//! Webhooks verifier accepts, a bounded schedule that ends in `failed`,
//! redelivery, reading the outbox in order, one transaction with the
//! change, and delivery exactly once across a SIGKILL and across instances.

mod delivery;
mod outbox;
mod restarts;
