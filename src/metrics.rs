//! Prometheus counters for what an operator watches: flows, refreshes, proxy
//! requests and their pacing and retries, connections by status, event
//! deliveries and the outbox's backlog, and request latency.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::checked::ConnectionKind;

type Labels = Vec<(&'static str, String)>;
/// The upstream status of a proxied call: a number, so counting one
/// allocates nothing.
type StatusLabel = [(&'static str, u16); 1];
/// A fixed word (a connection's kind, `oauth` or `api_key`; whose budget of
/// refused keys, `client` or `connection`), so counting one allocates nothing.
type WordLabel = [(&'static str, &'static str); 1];

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    flows_started: Counter,
    flows_finished: Family<Labels, Counter>,
    refreshes: Family<Labels, Counter>,
    proxy_requests: Family<StatusLabel, Counter>,
    proxy_paced_waits: Family<WordLabel, Histogram>,
    proxy_paced_refusals: Family<WordLabel, Counter>,
    proxy_retries: Family<WordLabel, Counter>,
    api_keys_refused: Counter,
    api_key_guesses_limited: Family<WordLabel, Counter>,
    connections: Family<Labels, Gauge>,
    request_seconds: Family<Labels, Histogram>,
    /// Each route's histogram in `request_seconds`, found by the route alone:
    /// every request observes one, and building the family's key would
    /// allocate each time. Routes are the router's, so this stays small.
    route_histograms: RwLock<HashMap<Box<str>, Histogram>>,
    upkeep: Family<Labels, Counter>,
    swept: Family<Labels, Counter>,
    table_rows: Family<Labels, Gauge>,
    upkeep_lag: Gauge,
    upkeep_pass_ms: Gauge,
    event_deliveries: Family<OutcomeLabel, Counter>,
    events_given_up: Counter,
    events_pending: Gauge,
    events_oldest_pending_seconds: Gauge,
}

/// How an event delivery went: fixed words, so counting one allocates nothing.
type OutcomeLabel = [(&'static str, &'static str); 1];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("emailoctopus_connect");
        let flows_started = Counter::default();
        let flows_finished = Family::<Labels, Counter>::default();
        let refreshes = Family::<Labels, Counter>::default();
        let proxy_requests = Family::<StatusLabel, Counter>::default();
        let proxy_paced_waits = Family::<WordLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 11))
        });
        let proxy_paced_refusals = Family::<WordLabel, Counter>::default();
        let proxy_retries = Family::<WordLabel, Counter>::default();
        let api_keys_refused = Counter::default();
        let api_key_guesses_limited = Family::<WordLabel, Counter>::default();
        let connections = Family::<Labels, Gauge>::default();
        let request_seconds = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "flows_started",
            "Connect flows started at /auth",
            flows_started.clone(),
        );
        registry.register(
            "flows_finished",
            "Connect flows finished, by outcome",
            flows_finished.clone(),
        );
        registry.register(
            "refreshes",
            "Token refreshes at the provider, by outcome",
            refreshes.clone(),
        );
        registry.register(
            "proxy_requests",
            "Requests through the API proxy, by upstream status",
            proxy_requests.clone(),
        );
        registry.register(
            "proxy_paced_wait_seconds",
            "How long proxied calls that waited for their connection's turn waited, by connection kind",
            proxy_paced_waits.clone(),
        );
        registry.register(
            "proxy_paced_refusals",
            "Proxied calls answered 429 here because their connection's turn was too far off, by connection kind",
            proxy_paced_refusals.clone(),
        );
        registry.register(
            "proxy_retries",
            "Proxied calls sent again because the caller asked for retries (X-Retries), by connection kind",
            proxy_retries.clone(),
        );
        registry.register(
            "api_keys_refused",
            "API keys the EmailOctopus API refused when they were checked",
            api_keys_refused.clone(),
        );
        registry.register(
            "api_key_guesses_limited",
            "API keys not checked because too many had been refused lately, by whose budget was spent (client, connection)",
            api_key_guesses_limited.clone(),
        );
        registry.register(
            "connections",
            "Stored connections, by status",
            connections.clone(),
        );
        let upkeep = Family::<Labels, Counter>::default();
        let swept = Family::<Labels, Counter>::default();
        let table_rows = Family::<Labels, Gauge>::default();
        let upkeep_lag = Gauge::default();
        let upkeep_pass_ms = Gauge::default();
        registry.register(
            "upkeep",
            "Background upkeep by job (refresh, key_check) and result (ok, rejected, failed)",
            upkeep.clone(),
        );
        registry.register(
            "swept_rows",
            "Expired rows deleted by the background sweeps, by table",
            swept.clone(),
        );
        registry.register(
            "table_rows",
            "Rows in the tables the sweeps keep small, by table",
            table_rows.clone(),
        );
        registry.register(
            "upkeep_lag_seconds",
            "How overdue the most overdue upkeep was at the last pass",
            upkeep_lag.clone(),
        );
        registry.register(
            "upkeep_pass_milliseconds",
            "How long the last background pass took",
            upkeep_pass_ms.clone(),
        );
        let event_deliveries = Family::<OutcomeLabel, Counter>::default();
        let events_given_up = Counter::default();
        let events_pending = Gauge::default();
        let events_oldest_pending_seconds = Gauge::default();
        registry.register(
            "event_deliveries",
            "Webhook delivery attempts by outcome (delivered, refused, failed)",
            event_deliveries.clone(),
        );
        registry.register(
            "events_given_up",
            "Events marked failed after the last attempt of their schedule",
            events_given_up.clone(),
        );
        registry.register(
            "events_pending",
            "Events in the outbox not yet delivered (the backlog)",
            events_pending.clone(),
        );
        registry.register(
            "events_oldest_pending_seconds",
            "Age of the oldest event not yet delivered (0 when none)",
            events_oldest_pending_seconds.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route",
            request_seconds.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            flows_started,
            flows_finished,
            refreshes,
            proxy_requests,
            proxy_paced_waits,
            proxy_paced_refusals,
            proxy_retries,
            api_keys_refused,
            api_key_guesses_limited,
            connections,
            request_seconds,
            route_histograms: RwLock::default(),
            upkeep,
            swept,
            table_rows,
            upkeep_lag,
            upkeep_pass_ms,
            event_deliveries,
            events_given_up,
            events_pending,
            events_oldest_pending_seconds,
        }))
    }
}

impl Metrics {
    pub fn flow_started(&self) {
        self.0.flows_started.inc();
    }

    pub fn flow_finished(&self, outcome: &str) {
        self.0
            .flows_finished
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub fn refresh(&self, outcome: &str) {
        self.0
            .refreshes
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub fn proxy_request(&self, status: u16) {
        self.0
            .proxy_requests
            .get_or_create(&[("status", status)])
            .inc();
    }

    /// A proxied call that waited `waited` for its connection's turn.
    pub fn proxy_paced_wait(&self, kind: ConnectionKind, waited: std::time::Duration) {
        self.0
            .proxy_paced_waits
            .get_or_create(&[("kind", kind.as_str())])
            .observe(waited.as_secs_f64());
    }

    /// A proxied call answered 429 here, unsent.
    pub fn proxy_paced_refusal(&self, kind: ConnectionKind) {
        self.0
            .proxy_paced_refusals
            .get_or_create(&[("kind", kind.as_str())])
            .inc();
    }

    pub fn proxy_retry(&self, kind: ConnectionKind) {
        self.0
            .proxy_retries
            .get_or_create(&[("kind", kind.as_str())])
            .inc();
    }

    pub fn api_key_refused(&self) {
        self.0.api_keys_refused.inc();
    }

    /// A key not checked: `by`'s budget of refused keys is spent.
    pub fn api_key_guesses_limited(&self, by: &'static str) {
        self.0
            .api_key_guesses_limited
            .get_or_create(&[("by", by)])
            .inc();
    }

    pub fn request_finished(&self, route: &str, seconds: f64) {
        let routes = &self.0.route_histograms;
        if let Some(histogram) = routes.read().expect("never poisoned").get(route) {
            histogram.observe(seconds);
            return;
        }
        let histogram = self
            .0
            .request_seconds
            .get_or_create(&vec![("route", route.to_owned())])
            .clone();
        histogram.observe(seconds);
        routes
            .write()
            .expect("never poisoned")
            .insert(route.into(), histogram);
    }

    pub fn upkeep(&self, job: &str, result: &str) {
        self.0
            .upkeep
            .get_or_create(&vec![
                ("job", job.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
    }

    pub fn swept(&self, table: &str, rows: u64) {
        self.0
            .swept
            .get_or_create(&vec![("table", table.to_owned())])
            .inc_by(rows);
    }

    pub fn upkeep_lag(&self, seconds: i64) {
        self.0.upkeep_lag.set(seconds);
    }

    pub fn upkeep_pass(&self, took: std::time::Duration) {
        self.0
            .upkeep_pass_ms
            .set(i64::try_from(took.as_millis()).unwrap_or(i64::MAX));
    }

    pub fn event_delivery(&self, outcome: &'static str) {
        self.0
            .event_deliveries
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }

    pub fn event_given_up(&self) {
        self.0.events_given_up.inc();
    }

    /// Sets the outbox gauges from a fresh count.
    pub fn event_backlog(&self, pending: i64, oldest_age_secs: i64) {
        self.0.events_pending.set(pending);
        self.0.events_oldest_pending_seconds.set(oldest_age_secs);
    }

    /// Sets the table-size gauge from a fresh count.
    pub fn table_rows(&self, rows: &[(&'static str, i64)]) {
        for (table, count) in rows {
            self.0
                .table_rows
                .get_or_create(&vec![("table", (*table).to_owned())])
                .set(*count);
        }
    }

    /// Sets the connection gauge from a fresh count, then renders the text exposition.
    pub fn render(&self, connections_by_status: &[(&'static str, i64)]) -> String {
        for (status, count) in connections_by_status {
            self.0
                .connections
                .get_or_create(&vec![("status", (*status).to_owned())])
                .set(*count);
        }
        let mut out = String::new();
        encode(&mut out, &self.0.registry).expect("writing to a String cannot fail");
        out
    }
}
