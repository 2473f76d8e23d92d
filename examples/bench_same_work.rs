//! The same-work ceiling (bench/run.sh, bench/proxy.sh): a bare axum server
//! that does the work emailoctopus-connect must do on its hot paths, as
//! cheaply as we know how, so that the server's figures read as a share of
//! what that work costs rather than of what the framework alone allows
//! (`bench_ceiling` is that other, lower bar).
//!
//! - `GET /auth`: a state and a PKCE verifier from the OS, the S256
//!   challenge, both sealed with AES-256-GCM into a cookie, a 303 to the
//!   provider.
//! - `GET /callback`: the cookie opened and the state compared, the code
//!   exchanged over one pooled client, the tokens sealed; then the state's
//!   hash inserted once (a replay is refused) and the sealed tokens upserted
//!   in one SQLite transaction (WAL, `synchronous=NORMAL`) on a writer
//!   thread that commits whatever is queued together.
//! - `GET /connections/{id}/api/{*path}`: the admin bearer compared in
//!   constant time, the connection's sealed API key read from SQLite by its
//!   id (one prepared statement on a kept connection) and opened, the call
//!   forwarded with it, the answer streamed back. The key is sealed and
//!   stored on a connection's first call.
//!
//!   With `CEILING_PACING=BURST,RATE` a call first takes its connection's
//!   turn from the server's own pacing (`api::pacing`, built as the server
//!   builds it), so that one ceiling run with it and one without, in the same
//!   run of bench/proxy.sh, show what pacing itself costs.
//!
//! Usage: `bench_same_work AUTHORIZE_URL TOKEN_URL API_BASE_URL SQLITE_PATH
//! [LISTEN_ADDR]`; prints `listening on http://ADDR` once it accepts
//! connections. The admin bearer is `bench-admin-token`, the API key
//! `bench-api-key` (as bench/proxy.sh sets them on the server).

#[path = "support/ceiling.rs"]
mod ceiling_parts;

use std::sync::{Arc, Mutex};
use std::thread;

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use emailoctopus_connect::api::pacing::{Pacing, PacingSettings};
use emailoctopus_connect::checked::ConnectionId;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};
use url::Url;

const COOKIE: &str = "eoc_flows";
const ADMIN_TOKEN: &str = "bench-admin-token";
const API_KEY: &str = "bench-api-key";
const NONCE_LEN: usize = 12;

struct Ceiling {
    authorize_url: Url,
    token_url: Url,
    api_base: String,
    redirect_uri: String,
    http: reqwest::Client,
    cipher: Aes256Gcm,
    writer: mpsc::UnboundedSender<Write>,
    /// Reads the stored credentials (WAL: it never waits for the writer).
    reader: Mutex<rusqlite::Connection>,
    /// The server's pacing, when `CEILING_PACING` asks for it.
    pacing: Option<Pacing>,
}

/// What the cookie carries: the flow's secrets and its connection.
#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    verifier: String,
    connection_id: String,
    expires_at: i64,
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: String,
    state: String,
}

/// One callback's writes, and where to say whether the state was new.
struct Write {
    state_hash: [u8; 32],
    connection_id: String,
    sealed: Vec<u8>,
    done: oneshot::Sender<bool>,
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: bench_same_work AUTHORIZE_URL TOKEN_URL API_BASE_URL SQLITE_PATH [LISTEN_ADDR]";
    let authorize_url = Url::parse(&args.next().expect(usage)).expect("AUTHORIZE_URL is a URL");
    let token_url = Url::parse(&args.next().expect(usage)).expect("TOKEN_URL is a URL");
    let api_base = args.next().expect(usage);
    let database = args.next().expect(usage);
    let (listener, bound) = ceiling_parts::listen(args.next()).await;
    let reader = open_database(&database);
    let (writer, queue) = mpsc::unbounded_channel();
    thread::spawn(move || write_batches(&database, queue));
    let ceiling = Arc::new(Ceiling {
        authorize_url,
        token_url,
        api_base: api_base.trim_end_matches('/').to_owned(),
        redirect_uri: format!("http://{bound}/callback"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the client builds"),
        cipher: Aes256Gcm::new(&Aes256Gcm::generate_key(OsRng)),
        writer,
        reader: Mutex::new(reader),
        pacing: pacing_from_env(),
    });
    let app = Router::new()
        .route("/auth", get(auth))
        .route("/callback", get(callback))
        .route("/connections/{id}/api/{*path}", get(proxy))
        .with_state(ceiling);
    println!("listening on http://{bound}");
    axum::serve(listener, app).await.expect("serves");
}

/// `CEILING_PACING=BURST,RATE`: the pacing the server builds from
/// `--proxy-burst=BURST --proxy-rate-per-sec=RATE` (its default provider
/// timeout allows a 10 s wait).
fn pacing_from_env() -> Option<Pacing> {
    let value = std::env::var("CEILING_PACING").ok()?;
    let (burst, rate) = value.split_once(',').expect("CEILING_PACING is BURST,RATE");
    let burst = burst.parse().expect("BURST is a whole number");
    let rate = rate.parse().expect("RATE is a number");
    Some(Pacing::new(PacingSettings::within(
        burst,
        rate,
        std::time::Duration::from_secs(10),
    )))
}

/// A connection to the database, its tables made if missing.
fn open_database(path: &str) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).expect("the database opens");
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS used_states (hash BLOB PRIMARY KEY, expires_at INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS connections (id TEXT PRIMARY KEY, sealed BLOB NOT NULL, updated_at INTEGER NOT NULL);",
    )
    .expect("the schema is created");
    db
}

/// The writer thread: takes what is queued, writes it in one transaction,
/// answers each write once it is committed.
fn write_batches(path: &str, mut queue: mpsc::UnboundedReceiver<Write>) {
    let mut db = open_database(path);
    let mut batch = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
        }
        let now = unix_now();
        let tx = db.transaction().expect("a transaction begins");
        let mut answers = Vec::with_capacity(batch.len());
        {
            let mut used = tx
                .prepare_cached(
                    "INSERT INTO used_states (hash, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )
                .expect("prepares");
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO connections (id, sealed, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                )
                .expect("prepares");
            for write in batch.drain(..) {
                let first_use = used
                    .execute(rusqlite::params![&write.state_hash[..], now + 600])
                    .expect("inserts")
                    == 1;
                if first_use {
                    upsert
                        .execute(rusqlite::params![write.connection_id, write.sealed, now])
                        .expect("upserts");
                }
                answers.push((write.done, first_use));
            }
        }
        tx.commit().expect("commits");
        for (done, first_use) in answers {
            let _ = done.send(first_use);
        }
    }
}

async fn auth(State(ceiling): State<Arc<Ceiling>>) -> Response {
    let state = random_text();
    let verifier = random_text();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let flow = Flow {
        state,
        verifier,
        connection_id: "default".to_owned(),
        expires_at: unix_now() + 600,
    };
    let json = serde_json::to_vec(&[&flow]).expect("serialises");
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age=600",
        URL_SAFE_NO_PAD.encode(ceiling.seal(&json, COOKIE.as_bytes()))
    );
    let mut location = ceiling.authorize_url.clone();
    location
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "bench")
        .append_pair("state", &flow.state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("redirect_uri", &ceiling.redirect_uri);
    ceiling_parts::see_other(&location, cookie)
}

async fn callback(
    State(ceiling): State<Arc<Ceiling>>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(flow) = ceiling.flow_from(&headers) else {
        return (StatusCode::BAD_REQUEST, "no flow").into_response();
    };
    let same_state: bool = flow.state.as_bytes().ct_eq(query.state.as_bytes()).into();
    if !same_state || flow.expires_at <= unix_now() {
        return (StatusCode::BAD_REQUEST, "wrong state").into_response();
    }
    let tokens = match ceiling_parts::exchange_code(
        &ceiling.http,
        &ceiling.token_url,
        &query.code,
        &ceiling.redirect_uri,
        &flow.verifier,
    )
    .await
    {
        Ok(tokens) => tokens,
        Err(failed) => return failed,
    };
    let sealed = ceiling.seal(
        &serde_json::to_vec(&tokens).expect("serialises"),
        flow.connection_id.as_bytes(),
    );
    let (done, committed) = oneshot::channel();
    let write = Write {
        state_hash: Sha256::digest(flow.state.as_bytes()).into(),
        connection_id: flow.connection_id,
        sealed,
        done,
    };
    if ceiling.writer.send(write).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    match committed.await {
        Ok(true) => (
            [(
                header::SET_COOKIE,
                "eoc_flows=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0",
            )],
            Html("<!doctype html><p>Your EmailOctopus account is connected.</p>"),
        )
            .into_response(),
        Ok(false) => (StatusCode::BAD_REQUEST, "replayed").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn proxy(
    State(ceiling): State<Arc<Ceiling>>,
    Path((id, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let expected = format!("Bearer {ADMIN_TOKEN}");
    let admitted = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())));
    if !admitted {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some(pacing) = &ceiling.pacing {
        let Ok(id) = ConnectionId::parse(&id) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        if pacing.turn(&id).await.is_err() {
            return StatusCode::TOO_MANY_REQUESTS.into_response();
        }
    }
    let Some(key) = ceiling.api_key_of(&id) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let answer = ceiling
        .http
        .get(format!("{}/{path}", ceiling.api_base))
        .bearer_auth(key)
        .send()
        .await;
    match answer {
        Ok(answer) => {
            let status = answer.status();
            let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
            let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
            *response.status_mut() = status;
            if let Some(content_type) = content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
            }
            response
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

impl Ceiling {
    /// The connection's API key, read and opened; sealed and stored first
    /// if the connection has none yet.
    fn api_key_of(&self, id: &str) -> Option<String> {
        let db = self.reader.lock().ok()?;
        let sealed: Option<Vec<u8>> = db
            .prepare_cached("SELECT sealed FROM connections WHERE id = ?1")
            .ok()?
            .query_row([id], |row| row.get(0))
            .ok();
        let Some(sealed) = sealed else {
            let sealed = self.seal(API_KEY.as_bytes(), id.as_bytes());
            db.execute(
                "INSERT INTO connections (id, sealed, updated_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, sealed, unix_now()],
            )
            .ok()?;
            return Some(API_KEY.to_owned());
        };
        String::from_utf8(self.open(&sealed, id.as_bytes())?).ok()
    }

    fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                aes_gcm::aead::Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut sealed = nonce.to_vec();
        sealed.extend(
            self.cipher
                .encrypt(
                    &nonce,
                    aes_gcm::aead::Payload {
                        msg: plaintext,
                        aad,
                    },
                )
                .expect("seals"),
        );
        sealed
    }

    fn flow_from(&self, headers: &HeaderMap) -> Option<Flow> {
        let value = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .find_map(|c| c.trim().strip_prefix("eoc_flows="))?;
        let sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
        let json = self.open(&sealed, COOKIE.as_bytes())?;
        let mut flows: Vec<Flow> = serde_json::from_slice(&json).ok()?;
        flows.pop()
    }
}

fn random_text() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
