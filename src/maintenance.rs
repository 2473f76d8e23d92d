//! The background upkeep loop: every few seconds (jittered, so instances
//! drift apart) it claims small batches of connections that are due (a
//! token to refresh ahead of need, an API key to check), does their upkeep a
//! few at a time, and sweeps expired single-use records in bounded batches.
//!
//! Claims are leases on the rows (`connections::Connections::claim_due`):
//! instances on one Postgres share the work without doing it twice, and a
//! dead instance's claims expire so another picks them up. The loop never
//! holds a pooled connection across a call to the provider or the API, and
//! runs at most `CONCURRENCY` upkeep tasks, so requests keep the pool.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::MaintenanceSettings;
use crate::connections::{Connections, UpkeepOutcome};
use crate::metrics::Metrics;
use crate::store::{Store, SweepCounts};

/// Connections claimed at once.
const BATCH: i64 = 32;
/// Upkeep tasks running at once, per process.
const CONCURRENCY: usize = 4;
/// Expired rows deleted per table per pass.
const SWEEP_BATCH: i64 = 1000;

/// What one pass did (for tests and the benchmark).
#[derive(Debug, Default, Clone)]
pub struct PassReport {
    pub outcomes: Vec<UpkeepOutcome>,
    pub swept: SweepCounts,
}

pub struct Maintenance {
    store: Store,
    connections: Arc<Connections>,
    clock: Clock,
    metrics: Metrics,
    settings: MaintenanceSettings,
    /// One pass at a time in this process.
    passing: tokio::sync::Mutex<()>,
}

impl Maintenance {
    pub fn new(
        store: Store,
        connections: Arc<Connections>,
        clock: Clock,
        metrics: Metrics,
        settings: MaintenanceSettings,
    ) -> Self {
        Self {
            store,
            connections,
            clock,
            metrics,
            settings,
            passing: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs passes until `stopped` turns true; returns at once when `MAINTENANCE=false`.
    pub async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        if !self.settings.enabled {
            return;
        }
        loop {
            let jitter = rand::thread_rng().gen_range(0.0..0.2);
            let wait = self.settings.interval.mul_f64(1.0 + jitter);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
            tokio::select! {
                _ = self.pass() => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }

    /// One pass: batches of due connections while they come back full (for
    /// at most one interval), then a sweep.
    pub async fn pass(&self) -> PassReport {
        let _one = self.passing.lock().await;
        let started = Instant::now();
        let mut report = PassReport::default();
        match self.store.upkeep_lag(self.clock.now()).await {
            Ok(lag) => self.metrics.upkeep_lag(lag),
            Err(error) => tracing::warn!(%error, "upkeep: could not read what is due"),
        }
        loop {
            let batch = self.one_batch().await;
            let full = batch.len() as i64 == BATCH;
            report.outcomes.extend(batch);
            if !full || started.elapsed() >= self.settings.interval {
                break;
            }
        }
        match self
            .store
            .sweep_expired(self.clock.now(), SWEEP_BATCH)
            .await
        {
            Ok(swept) => {
                self.metrics
                    .swept("consumed_flow_states", swept.consumed_flow_states);
                self.metrics
                    .swept("connect_sessions", swept.connect_sessions);
                report.swept = swept;
            }
            Err(error) => tracing::warn!(%error, "upkeep: could not sweep expired records"),
        }
        self.metrics.upkeep_pass(started.elapsed());
        report
    }

    async fn one_batch(&self) -> Vec<UpkeepOutcome> {
        // Long enough for the whole batch, a few at a time, each up to one refresh.
        let rounds = BATCH / CONCURRENCY as i64 + 1;
        let claimed = match self.connections.claim_due(BATCH, rounds).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "upkeep: could not claim due connections");
                return Vec::new();
            }
        };
        futures_util::stream::iter(claimed)
            .map(|id| {
                // Each in a task of its own: a refresh the provider has
                // answered is stored even if the loop stops meanwhile, and a
                // panic costs this one connection's upkeep, not the loop.
                let connections = Arc::clone(&self.connections);
                let claimed = id.clone();
                let upkeep = tokio::spawn(async move { connections.upkeep(&claimed).await });
                async move {
                    match upkeep.await {
                        Ok(Ok(outcome)) => outcome,
                        Ok(Err(error)) => {
                            tracing::warn!(connection = %id, %error, "upkeep failed");
                            UpkeepOutcome::Skipped
                        }
                        Err(_panicked) => {
                            tracing::error!(connection = %id, "the upkeep of a connection panicked");
                            UpkeepOutcome::Skipped
                        }
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .inspect(|outcome| {
                if let Some((job, result)) = outcome.label() {
                    self.metrics.upkeep(job, result);
                }
            })
            .collect()
            .await
    }
}
