//! `App::build(config)`: binds the listener (so it knows its real address),
//! opens the store, runs migrations and assembles the router. `run(shutdown)`
//! serves until the future resolves. The binary and the tests share this path.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use url::Url;

use crate::checked::{ConnectionId, ConnectionStatus};
use crate::clock::Clock;
use crate::config::{Config, ProviderSettings};
use crate::connect_sessions::ConnectSessions;
use crate::connections::{Connections, ConnectionsParts, CredentialError};
use crate::crypto::{Purpose, SecretDigest};
use crate::emailoctopus_api::EmailOctopusApi;
use crate::events::{Deliverer, EventLog, Outbox};
use crate::maintenance::Maintenance;
use crate::metrics::Metrics;
use crate::oauth::{ProviderClient, UsedFlows};
use crate::sandbox::SandboxInfo;
use crate::server;
use crate::state::{AppState, Inner, RunningMode};
use crate::store::{Backend, DatabaseUrl, ProfileUpdate, Store, StoreError};
use crate::web::error::PageError;
use crate::{api, monitoring, web};

mod counterparts;
mod middleware;

use counterparts::{Counterparts, SandboxRun, TemporaryDatabase};
use middleware::with_middleware;

/// JSON and form bodies larger than this get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("DATABASE_URL: {0}")]
    Store(#[from] StoreError),
}

pub struct App {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: Router,
    metrics_router: Router,
    state: AppState,
    maintenance: Arc<Maintenance>,
    /// Sends the outbox's events; its attempts in flight are let finish at shutdown.
    deliverer: Arc<Deliverer>,
    sandbox: Option<MountedSandbox>,
}

/// What the sandbox made for the run, and its database, removed when the
/// app goes.
struct MountedSandbox {
    info: SandboxInfo,
    _database: TemporaryDatabase,
}

/// How long a shutdown waits for webhook deliveries still in flight; one
/// cut off is sent again once its lease runs out, by this server or another.
const WEBHOOK_GRACE: Duration = Duration::from_secs(5);

impl App {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Clock::default()).await
    }

    /// As `build`, with a clock the caller can move (tests).
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, StartError> {
        let listener = server::bind(config.listen_addr).map_err(|source| StartError::Bind {
            addr: config.listen_addr,
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen_addr,
            source,
        })?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => {
                Some(server::bind(addr).map_err(|source| StartError::Bind { addr, source })?)
            }
            None => None,
        };
        let http = crate::http_client::build(config.provider_timeout);

        let counterparts = Counterparts::of(&config, bound, &clock);
        let redirect_raw = redirect_uri(
            counterparts
                .provider()
                .and_then(|p| p.redirect_uri.as_deref())
                .or(config.redirect_uri.as_deref()),
            bound,
        );
        let redirect_uri = Url::parse(&redirect_raw).expect("a checked redirect URI parses");
        let Counterparts {
            mode,
            api_base_url,
            admin_token,
            pages,
            database_url,
        } = counterparts;
        let store = Store::connect(&database_url, &config.storage.pool).await?;
        let metrics = Metrics::default();
        let client = |settings: &ProviderSettings| {
            Arc::new(ProviderClient::new(settings, &redirect_raw, http.clone()))
        };
        // The sandbox's routes are mounted once the router is built.
        let mut sandbox = None;
        let mode: RunningMode = mode.map(
            |settings| client(&settings),
            |run| {
                let provider = client(&run.sandbox.provider);
                sandbox = Some(run);
                provider
            },
        );
        if mode.provider().is_none() {
            tracing::info!("OAuth is not configured: connections use API keys");
        }
        if admin_token.is_none() {
            tracing::info!(
                "ADMIN_TOKEN is not set: the backend API answers 401 to every request \
                 (make one with `emailoctopus-connect gen-token`)"
            );
        }
        let api = EmailOctopusApi::new(
            crate::http_client::build_streaming(config.provider_timeout),
            api_base_url,
        );
        let deliverer = Arc::new(Deliverer::new(
            store.clone(),
            config.webhook.clone(),
            http.clone(),
            config.provider_timeout,
            clock.clone(),
            metrics.clone(),
            config.events,
        ));
        let lock_wait = config.provider_timeout + Duration::from_secs(5);
        let refresh_slots = refresh_slots(&database_url, config.storage.pool.max_connections);
        let connections = Connections::new(ConnectionsParts {
            store: store.clone(),
            keys: config.storage.keys.sealer(Purpose::Credentials),
            clock: clock.clone(),
            provider: mode.provider().cloned(),
            api: api.clone(),
            outbox: Outbox::new(config.webhook.is_some(), clock.clone()),
            metrics: metrics.clone(),
            lock_wait,
            upkeep: config.maintenance,
            refresh_slots,
        });
        let connections = Arc::new(connections);
        let maintenance = Arc::new(Maintenance::new(
            store.clone(),
            connections.clone(),
            clock.clone(),
            metrics.clone(),
            config.maintenance,
        ));
        let public_url = public_url(&redirect_uri);
        let state = AppState::new(Inner {
            sessions: ConnectSessions::new(store.clone(), clock.clone(), public_url.clone()),
            events: EventLog::new(store.clone(), clock.clone(), config.webhook.is_some()),
            used_flows: UsedFlows::new(store, clock.clone()),
            flow_keys: config.storage.keys.sealer(Purpose::FlowCookies),
            admin_keys: config.storage.keys.sealer(Purpose::AdminSessions),
            csrf_keys: config.storage.keys.csrf_macs(),
            clock,
            connections,
            api,
            admin_token: admin_token
                .as_ref()
                .map(|token| SecretDigest::of(token.expose_secret().as_bytes())),
            open_connect: config.open_connect,
            mode,
            return_to_origins: config.return_to_origins.clone(),
            browser_hosts: crate::checked::OwnHosts::new(
                &redirect_uri,
                bound,
                &config.allowed_hosts,
            ),
            cookie_secure: redirect_uri.scheme() == "https",
            // Three times the idle limit: enough for 10 MiB, not for a trickle.
            pacing: crate::api::proxy::pacing_for(&config.pacing, config.provider_timeout),
            proxy_deadline: crate::api::proxy::deadline_for(config.provider_timeout),
            public_url,
            pages,
            metrics,
        });

        let app = Router::new()
            .merge(web::router(&state))
            .merge(api::router())
            .merge(monitoring::router())
            .fallback(|| async { PageError::NotFound })
            .method_not_allowed_fallback(|| async { PageError::MethodNotAllowed })
            .with_state(state.clone());
        let (app, sandbox) = match sandbox {
            Some(SandboxRun { sandbox, database }) => {
                let (app, info) = sandbox.mount(app, state.browser_hosts.clone());
                let mounted = MountedSandbox {
                    info,
                    _database: database,
                };
                (app, Some(mounted))
            }
            None => (app, None),
        };
        let router = with_middleware(app, &state);
        let metrics_router = monitoring::metrics_router().with_state(state.clone());
        Ok(Self {
            listener,
            metrics_listener,
            router,
            metrics_router,
            state,
            maintenance,
            deliverer,
            sandbox,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served on its own (`METRICS_ADDR`, port 0 resolved).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// The background upkeep, so a test can run a pass when it chooses.
    pub fn maintenance(&self) -> Arc<Maintenance> {
        self.maintenance.clone()
    }

    pub fn sandbox(&self) -> Option<&SandboxInfo> {
        self.sandbox.as_ref().map(|sandbox| &sandbox.info)
    }

    /// A one-time connect link for `default` while it does not exist or needs
    /// re-authorization, so that "run it and click connect" works without
    /// opening the door to anyone else.
    pub async fn default_connect_link(&self) -> Result<Option<Url>, CredentialError> {
        let id = ConnectionId::default_connection();
        let existing = self.state.connections.get(&id).await?;
        if existing.is_some_and(|c| c.status == ConnectionStatus::Connected) {
            return Ok(None);
        }
        let session = self
            .state
            .sessions
            .create(id, None, ProfileUpdate::default())
            .await?;
        Ok(Some(session.connect_url))
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then
    /// closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let upkeep = tokio::spawn(self.maintenance.run(stopped.clone()));
        let mut deliveries = tokio::spawn(self.deliverer.clone().run(stopped.clone()));
        let metrics = self.metrics_listener.map(|listener| {
            let mut stopped = stopped.clone();
            tokio::spawn(server::serve(listener, self.metrics_router, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        });
        server::serve(self.listener, self.router, shutdown).await;
        let _ = stop.send(true);
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        let _ = upkeep.await;
        if tokio::time::timeout(WEBHOOK_GRACE, &mut deliveries)
            .await
            .is_err()
        {
            deliveries.abort();
            // Once the attempts are dropped (their requests with them), no
            // other instance can overlap one by taking its event.
            let _ = deliveries.await;
            tracing::warn!(
                "shutting down with webhook deliveries still in flight; they are sent again later"
            );
            self.deliverer.release_leases().await;
        }
        self.state.connections.close().await;
        drop(self.sandbox);
    }
}

/// The redirect URI as configured (kept as written), or this listener's `/callback`.
fn redirect_uri(configured: Option<&str>, bound: SocketAddr) -> String {
    configured.map(str::to_owned).unwrap_or_else(|| {
        let host = if bound.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], bound.port()))
        } else {
            bound
        };
        format!("http://{host}/callback")
    })
}

/// Connect links point at this server as the browser sees it: the redirect URI's origin.
fn public_url(redirect_uri: &Url) -> Url {
    let mut url = redirect_uri.clone();
    url.set_path("/");
    url.set_query(None);
    url
}

/// Refreshes at the provider at once from this process. On Postgres, fewer
/// than the pool has connections (none is held while the provider answers,
/// but each refresh's reads and writes need one). SQLite has a single pooled
/// connection, used only for single statements.
fn refresh_slots(database_url: &DatabaseUrl, pool_size: u32) -> usize {
    match database_url.backend() {
        Backend::Postgres => pool_size.saturating_sub(2).max(1) as usize,
        Backend::Sqlite => 8,
    }
}
