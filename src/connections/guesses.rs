//! How many API keys the API may refuse for one client, and for one
//! connection, before this server stops asking it: so that the connect
//! page, open or not, cannot be used to try keys (a list of leaked ones,
//! say) one after another at EmailOctopus's expense and in this server's name.
//!
//! Each is a token bucket (`buckets.rs`) that only a refused key empties: a
//! check takes a token before the API is asked and gives it back unless the
//! API refused the key, so a key the API accepts, or an API that does not
//! answer, costs nothing, and checks in flight at once cannot overdraw.
//!
//! The buckets live in this process: with N instances the budget is N
//! times as large. They start full after a restart.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::buckets::{Buckets, Refill};
use crate::checked::ConnectionId;

/// A client (one address) may have 10 keys refused at once, then one more
/// every 90 s (10 per quarter of an hour): more than a person who mistypes
/// needs, and a list of keys goes through at a key and a half a minute.
const PER_CLIENT: Refill = Refill {
    burst: 10.0,
    rate_per_sec: 10.0 / (15.0 * 60.0),
};

/// A connection may have 20 keys refused at once, then one more every 3 min
/// (20 an hour), from however many addresses: twice a client's burst, so one
/// person's typos do not lock it for another, while many addresses together
/// still get no further than about 500 a day.
const PER_CONNECTION: Refill = Refill {
    burst: 20.0,
    rate_per_sec: 20.0 / (60.0 * 60.0),
};

/// Who offers a key, which says what it may spend.
#[derive(Debug, Clone, Copy)]
pub enum Guesser<'a> {
    /// Someone at the connect page, from this address, for this connection:
    /// limited per client and per connection.
    Client(IpAddr, &'a ConnectionId),
    /// The app's backend (`PUT /connections/{id}/api-key`), passing on a key
    /// one of its users gave for this connection: limited per connection
    /// only, since one backend speaks for all its users from one address.
    Backend(&'a ConnectionId),
    /// A key already stored, checked again by the upkeep: not a guess, never limited.
    Stored,
}

/// Which budget was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuessLimit {
    Client,
    Connection,
}

impl GuessLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Connection => "connection",
        }
    }
}

/// A check that was not made: `by`'s budget is spent until `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TooManyGuesses {
    pub by: GuessLimit,
    pub retry_after: Duration,
}

#[derive(Debug, Clone)]
pub(super) struct GuessLimits(Arc<Mutex<Budgets>>);

#[derive(Debug)]
struct Budgets {
    /// By the client's address; an IPv6 client by its /64, which one host
    /// usually holds whole.
    clients: Buckets<IpAddr>,
    connections: Buckets<ConnectionId>,
}

impl Default for GuessLimits {
    fn default() -> Self {
        Self::with(PER_CLIENT, PER_CONNECTION)
    }
}

impl GuessLimits {
    fn with(per_client: Refill, per_connection: Refill) -> Self {
        Self(Arc::new(Mutex::new(Budgets {
            clients: Buckets::new(per_client),
            connections: Buckets::new(per_connection),
        })))
    }

    /// Takes a token from each of `guesser`'s budgets, or none when one is
    /// spent. The reservation gives them back when dropped, unless it is
    /// `spend`t: a check cut short spends nothing.
    pub(super) fn reserve(
        &self,
        guesser: Guesser<'_>,
        now: Instant,
    ) -> Result<Reservation, TooManyGuesses> {
        let (client, connection) = match guesser {
            Guesser::Client(address, id) => (Some(client_of(address)), Some(id.clone())),
            Guesser::Backend(id) => (None, Some(id.clone())),
            Guesser::Stored => (None, None),
        };
        let mut budgets = self.0.lock().expect("guess limits are never poisoned");
        let client_left = client.map(|c| (c, budgets.clients.tokens(&c, now)));
        let connection_left = connection
            .as_ref()
            .map(|id| budgets.connections.tokens(id, now));
        // The connection's first: when both are spent, that is the one no
        // other address gets past.
        if let Some(left) = connection_left.filter(|left| *left < 1.0) {
            return Err(TooManyGuesses {
                by: GuessLimit::Connection,
                retry_after: budgets.connections.refill().time_until(left, 1.0),
            });
        }
        if let Some((_, left)) = client_left.filter(|(_, left)| *left < 1.0) {
            return Err(TooManyGuesses {
                by: GuessLimit::Client,
                retry_after: budgets.clients.refill().time_until(left, 1.0),
            });
        }
        if let Some((client, left)) = client_left {
            budgets.clients.set(client, left - 1.0, now);
        }
        if let (Some(id), Some(left)) = (&connection, connection_left) {
            budgets.connections.set(id.clone(), left - 1.0, now);
        }
        Ok(Reservation {
            limits: self.clone(),
            client,
            connection,
            spent: false,
        })
    }
}

/// The key a client's budget is kept under.
fn client_of(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// The tokens one check took; given back on drop unless spent.
#[must_use]
#[derive(Debug)]
pub(super) struct Reservation {
    limits: GuessLimits,
    client: Option<IpAddr>,
    connection: Option<ConnectionId>,
    spent: bool,
}

impl Reservation {
    /// The API refused the key: the tokens stay taken.
    pub(super) fn spend(mut self) {
        self.spent = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.spent {
            return;
        }
        let now = Instant::now();
        let mut budgets = self
            .limits
            .0
            .lock()
            .expect("guess limits are never poisoned");
        if let Some(client) = self.client {
            give_back(&mut budgets.clients, client, now);
        }
        if let Some(id) = self.connection.take() {
            give_back(&mut budgets.connections, id, now);
        }
    }
}

fn give_back<K: Eq + std::hash::Hash>(buckets: &mut Buckets<K>, key: K, now: Instant) {
    let tokens = (buckets.tokens(&key, now) + 1.0).min(buckets.refill().burst);
    buckets.set(key, tokens, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> ConnectionId {
        ConnectionId::parse(name).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// 2 per client and 3 per connection, one back a second.
    fn small() -> GuessLimits {
        GuessLimits::with(
            Refill {
                burst: 2.0,
                rate_per_sec: 1.0,
            },
            Refill {
                burst: 3.0,
                rate_per_sec: 1.0,
            },
        )
    }

    /// Reserves and spends: one refused key.
    fn refused(limits: &GuessLimits, guesser: Guesser<'_>, now: Instant) {
        limits.reserve(guesser, now).unwrap().spend();
    }

    #[test]
    fn a_client_is_stopped_after_its_refused_keys_and_told_when_to_come_back() {
        let limits = small();
        let (a, now) = (id("a"), Instant::now());
        refused(&limits, Guesser::Client(ip("10.0.0.1"), &a), now);
        refused(&limits, Guesser::Client(ip("10.0.0.1"), &a), now);
        let stopped = limits
            .reserve(Guesser::Client(ip("10.0.0.1"), &a), now)
            .unwrap_err();
        assert_eq!(
            stopped,
            TooManyGuesses {
                by: GuessLimit::Client,
                retry_after: Duration::from_secs(1),
            }
        );
        let later = now + Duration::from_secs(1);
        assert!(limits
            .reserve(Guesser::Client(ip("10.0.0.1"), &a), later)
            .is_ok());
    }

    #[test]
    fn a_connection_is_stopped_whichever_clients_guess() {
        let limits = small();
        let (a, now) = (id("a"), Instant::now());
        refused(&limits, Guesser::Client(ip("10.0.0.1"), &a), now);
        refused(&limits, Guesser::Client(ip("10.0.0.2"), &a), now);
        refused(&limits, Guesser::Backend(&a), now);
        for guesser in [Guesser::Client(ip("10.0.0.3"), &a), Guesser::Backend(&a)] {
            assert_eq!(
                limits.reserve(guesser, now).unwrap_err().by,
                GuessLimit::Connection
            );
        }
        // Another connection, and the same client for it, are not held back.
        let b = id("b");
        assert!(limits
            .reserve(Guesser::Client(ip("10.0.0.1"), &b), now)
            .is_ok());
    }

    #[test]
    fn a_check_that_is_not_refused_gives_its_tokens_back() {
        let limits = small();
        let (a, now) = (id("a"), Instant::now());
        for _ in 0..10 {
            drop(
                limits
                    .reserve(Guesser::Client(ip("10.0.0.1"), &a), now)
                    .unwrap(),
            );
        }
        refused(&limits, Guesser::Client(ip("10.0.0.1"), &a), now);
        refused(&limits, Guesser::Client(ip("10.0.0.1"), &a), now);
    }

    #[test]
    fn checks_in_flight_at_once_cannot_overdraw() {
        let limits = small();
        let (a, now) = (id("a"), Instant::now());
        let first = limits.reserve(Guesser::Client(ip("10.0.0.1"), &a), now);
        let second = limits.reserve(Guesser::Client(ip("10.0.0.1"), &a), now);
        let third = limits.reserve(Guesser::Client(ip("10.0.0.1"), &a), now);
        assert!(first.is_ok() && second.is_ok());
        assert_eq!(third.unwrap_err().by, GuessLimit::Client);
    }

    #[test]
    fn a_refusal_by_the_connection_takes_nothing_from_the_client() {
        let limits = small();
        let (a, b, now) = (id("a"), id("b"), Instant::now());
        for _ in 0..3 {
            refused(&limits, Guesser::Backend(&a), now);
        }
        for _ in 0..3 {
            let _ = limits.reserve(Guesser::Client(ip("10.0.0.1"), &a), now);
        }
        refused(&limits, Guesser::Client(ip("10.0.0.1"), &b), now);
        refused(&limits, Guesser::Client(ip("10.0.0.1"), &b), now);
    }

    #[test]
    fn a_stored_key_is_never_limited() {
        let limits = small();
        let now = Instant::now();
        for _ in 0..100 {
            refused(&limits, Guesser::Stored, now);
        }
    }

    #[test]
    fn an_ipv6_client_is_one_client_across_its_64() {
        let limits = small();
        let (a, now) = (id("a"), Instant::now());
        refused(&limits, Guesser::Client(ip("2001:db8:1:2::1"), &a), now);
        refused(
            &limits,
            Guesser::Client(ip("2001:db8:1:2:ffff::9"), &a),
            now,
        );
        let other_host = limits.reserve(Guesser::Client(ip("2001:db8:1:2::7"), &a), now);
        assert_eq!(other_host.unwrap_err().by, GuessLimit::Client);
        assert_eq!(client_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn memory_stays_bounded_however_many_clients_guess() {
        let limits = GuessLimits::default();
        let start = Instant::now();
        // A refused key a tenth of a second, each from a new address for a
        // new connection, so that no budget runs out and only time frees one.
        for n in 0..50_000u32 {
            let now = start + Duration::from_millis(u64::from(n) * 100);
            let connection = id(&format!("c{n}"));
            let address = IpAddr::V4(n.into());
            refused(&limits, Guesser::Client(address, &connection), now);
        }
        let budgets = limits.0.lock().unwrap();
        // A client's token is back after 90 s and a connection's after
        // 180 s: about 900 and 1,800 are busy at a time, and a sweep keeps
        // each map within about twice that.
        assert!(budgets.clients.len() <= 2_000, "{}", budgets.clients.len());
        assert!(
            budgets.connections.len() <= 4_000,
            "{}",
            budgets.connections.len()
        );
    }
}
