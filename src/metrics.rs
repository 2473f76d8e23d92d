//! Prometheus counters for what an operator watches: flows, refreshes, proxy
//! requests, connections by status, and request latency.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    flows_started: Counter,
    flows_finished: Family<Labels, Counter>,
    refreshes: Family<Labels, Counter>,
    proxy_requests: Family<Labels, Counter>,
    api_keys_refused: Counter,
    connections: Family<Labels, Gauge>,
    request_seconds: Family<Labels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("emailoctopus_connect");
        let flows_started = Counter::default();
        let flows_finished = Family::<Labels, Counter>::default();
        let refreshes = Family::<Labels, Counter>::default();
        let proxy_requests = Family::<Labels, Counter>::default();
        let api_keys_refused = Counter::default();
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
            "api_keys_refused",
            "API keys the EmailOctopus API refused when they were checked",
            api_keys_refused.clone(),
        );
        registry.register(
            "connections",
            "Stored connections, by status",
            connections.clone(),
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
            api_keys_refused,
            connections,
            request_seconds,
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
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
    }

    pub fn api_key_refused(&self) {
        self.0.api_keys_refused.inc();
    }

    pub fn request_finished(&self, route: &str, seconds: f64) {
        self.0
            .request_seconds
            .get_or_create(&vec![("route", route.to_owned())])
            .observe(seconds);
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
