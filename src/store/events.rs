//! The event outbox: events written in the same transaction as the change
//! that caused them, leased to one deliverer at a time, read back in the
//! order they were committed.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::connections::decode_connection;
use super::profiles::{bind_end_user, decode_profile, Profile};
use super::transaction::{Statement, Transaction};
use super::{corrupt, ConnectionRow, Store, StoreError};
use crate::checked::{ConnectionId, ConnectionKind, EventId, EventType};
use crate::clock::UnixMillis;

/// An event to record beside a change of a connection; the connection's id
/// and kind are taken from the row the change wrote.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub event: EventType,
    /// Why a connection needs re-authorization.
    pub reason: Option<&'static str>,
    pub at: UnixMillis,
    /// False when no webhook is configured: the event is kept for polling only.
    pub deliver: bool,
}

/// Where an event's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt (or in one).
    Pending,
    Delivered,
    /// Every attempt of its schedule failed.
    Failed,
    /// No webhook was configured when it happened.
    NotSent,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::NotSent => "not_sent",
        }
    }

    fn from_stored(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed, Self::NotSent]
            .into_iter()
            .find(|state| state.as_str() == raw)
    }
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Its place in commit order: the polling cursor.
    pub seq: i64,
    pub id: EventId,
    pub event: EventType,
    pub connection_id: ConnectionId,
    pub kind: ConnectionKind,
    pub reason: Option<String>,
    pub at: UnixMillis,
    pub state: DeliveryState,
    /// Which round of attempts (a redelivery starts a new one).
    pub round: i64,
    /// Attempts in the current round.
    pub tries: i64,
    pub next_attempt_at: Option<UnixMillis>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// The connection's end user and tags as they were when it happened.
    pub profile: Profile,
}

/// What one delivery attempt got: a status code, or a short error category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub at: UnixMillis,
    pub status_code: Option<u16>,
    pub error: Option<AttemptError>,
}

/// Why an attempt got no answer: fixed categories, never the error's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptError {
    Timeout,
    Unreachable,
    BrokenAnswer,
}

impl AttemptError {
    const ALL: [Self; 3] = [Self::Timeout, Self::Unreachable, Self::BrokenAnswer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::BrokenAnswer => "broken_answer",
        }
    }

    fn from_stored(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|error| error.as_str() == raw)
    }
}

/// What an attempt leaves on the event it was claimed as.
#[derive(Debug, Clone, Copy)]
pub struct AttemptRecord {
    pub attempt: Attempt,
    /// `Pending` with the next attempt's time, or where the event ends.
    pub state: DeliveryState,
    pub next_attempt_at: Option<UnixMillis>,
}

impl Attempt {
    /// One line of the `attempts` column: `AT STATUS ERROR`, `-` for none.
    fn line(&self) -> String {
        let status = self.status_code.map_or("-".to_owned(), |s| s.to_string());
        let error = self.error.map_or("-", AttemptError::as_str);
        format!("{} {status} {error}\n", self.at)
    }

    fn parse_history(text: &str) -> Result<Vec<Self>, StoreError> {
        text.lines()
            .map(|line| {
                let mut parts = line.split(' ');
                let (Some(at), Some(status), Some(error), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(corrupt("event attempt"));
                };
                Ok(Self {
                    at: at.parse().map_err(|_| corrupt("event attempt time"))?,
                    status_code: match status {
                        "-" => None,
                        code => Some(code.parse().map_err(|_| corrupt("event attempt status"))?),
                    },
                    error: match error {
                        "-" => None,
                        word => Some(
                            AttemptError::from_stored(word)
                                .ok_or_else(|| corrupt("event attempt error"))?,
                        ),
                    },
                })
            })
            .collect()
    }
}

/// The outbox's size for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub pending: i64,
    pub oldest_pending_at: Option<UnixMillis>,
}

pub(super) const EVENT_COLUMNS: &str = concat!(
    "seq, id, event, connection_id, kind, reason, created_at_ms, state, round, tries, next_attempt_ms, attempts, ",
    profile_columns!()
);

impl Store {
    /// Runs `change` (one statement that returns the connection's row, or
    /// nothing when it changed nothing) and `then` on the row it returned,
    /// and records the events `announce` derives from the row they wrote,
    /// in one transaction: an event exists exactly when its change does.
    pub(super) async fn write_announcing(
        &self,
        change: Statement<'_>,
        then: impl AsyncFnOnce(&mut AnyConnection, AnyRow) -> Result<AnyRow, sqlx::Error>,
        announce: impl FnOnce(&ConnectionRow) -> Vec<NewEvent>,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let mut connection = self.connection().await?;
        let (mut transaction, written) =
            Transaction::begin_with(&mut connection, self.backend, change).await?;
        let Some(written) = written else {
            transaction.roll_back().await?;
            return Ok(None);
        };
        let row = decode_connection(&then(transaction.connection(), written).await?)?;
        let events = announce(&row);
        if events.is_empty() {
            transaction.commit_with(None).await?;
            return Ok(Some(row));
        }
        self.backend
            .take_event_turn(transaction.connection())
            .await?;
        let sql = insert_events_sql(events.len());
        transaction
            .commit_with(Some(bind_events(sqlx::query(&sql), &row, &events)))
            .await?;
        self.events_written.notify_one();
        Ok(Some(row))
    }

    /// Leases up to `limit` events due at `now` to `owner` until `until`,
    /// in the order they fell due (read off the `events_due` index),
    /// skipping those another deliverer holds or is claiming.
    pub async fn claim_due_events(
        &self,
        now: UnixMillis,
        owner: &str,
        until: UnixMillis,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = self.claim_sql();
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(owner)
            .bind(until)
            .bind(limit)
            .fetch_all(&mut *self.connection().await?)
            .await?;
        let mut events = rows
            .iter()
            .map(decode_event)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING gives no order.
        events.sort_by_key(|event| (event.next_attempt_at, event.seq));
        Ok(events)
    }

    /// Binds `$1` to `$4`: now, the owner, the lease's end and the limit.
    fn claim_sql(&self) -> String {
        let free = "(lease_until_ms IS NULL OR lease_until_ms <= $1)";
        format!(
            "UPDATE events SET lease_until_ms = $3, lease_owner = $2
             WHERE seq IN (SELECT seq FROM events
                           WHERE state = 'pending' AND next_attempt_ms <= $1 AND {free}
                           ORDER BY next_attempt_ms, seq LIMIT $4 {skip})
               AND state = 'pending' AND {free}
             RETURNING {EVENT_COLUMNS}",
            skip = self.backend.skip_locked()
        )
    }

    /// Records what the attempts on a claimed batch got and gives their
    /// leases back, in one statement; how many `owner` still held (the
    /// others' leases ran out and were taken over: nothing is recorded for
    /// them). An attempt of a round that a redelivery has replaced is
    /// recorded, but leaves the event as the redelivery set it.
    pub async fn record_attempts(
        &self,
        owner: &str,
        attempts: &[(&EventRow, AttemptRecord)],
    ) -> Result<u64, StoreError> {
        if attempts.is_empty() {
            return Ok(0);
        }
        let sql = record_attempts_sql(attempts.len());
        let mut record = sqlx::query(&sql).bind(owner);
        for (event, attempt) in attempts {
            let ended = (attempt.state != DeliveryState::Pending).then_some(attempt.attempt.at);
            record = record
                .bind(event.seq)
                .bind(event.round)
                .bind(attempt.attempt.line())
                .bind(attempt.state.as_str())
                .bind(attempt.next_attempt_at)
                .bind(ended);
        }
        let recorded = record.execute(&mut *self.connection().await?).await?;
        Ok(recorded.rows_affected())
    }

    /// Gives back every lease `owner` holds: a deliverer that stops with
    /// attempts cut short lets the next start, or another instance, send
    /// them at once rather than when the leases run out.
    pub async fn release_event_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let released = sqlx::query(
            "UPDATE events SET lease_until_ms = NULL, lease_owner = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(released.rows_affected())
    }

    /// Makes the event due at `now` with a fresh round of attempts (one in
    /// flight keeps its lease, and its outcome no longer counts); the event,
    /// or `None` if there is none.
    pub async fn redeliver(
        &self,
        id: &EventId,
        now: UnixMillis,
    ) -> Result<Option<EventRow>, StoreError> {
        let sql = format!(
            "UPDATE events SET round = round + 1, tries = 0,
               state = 'pending', next_attempt_ms = $2, finished_at_ms = NULL
             WHERE id = $1
             RETURNING {EVENT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(now)
            .fetch_optional(&mut *self.connection().await?)
            .await?;
        self.events_written.notify_one();
        row.as_ref().map(decode_event).transpose()
    }
}

/// The columns an event is inserted with.
const INSERTED_COLUMNS: &str = concat!(
    "id, event, connection_id, kind, reason, created_at_ms, state, next_attempt_ms, finished_at_ms, ",
    profile_columns!()
);
/// One statement that inserts `count` events (`bind_events` binds them).
fn insert_events_sql(count: usize) -> String {
    let per_event = INSERTED_COLUMNS.split(',').count();
    let rows = numbered_rows(count, per_event, 1, |_, parameter| parameter);
    format!("INSERT INTO events ({INSERTED_COLUMNS}) VALUES {rows}")
}

/// `count` rows of `width` parameters numbered on from `$first`, each
/// written as `write(column, "$n")` gives: `(…), (…)`.
fn numbered_rows(
    count: usize,
    width: usize,
    first: usize,
    write: impl Fn(usize, String) -> String,
) -> String {
    (0..count)
        .map(|row| {
            let values = (0..width)
                .map(|column| write(column, format!("${}", first + row * width + column)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({values})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds `events` about the connection `about`, in `INSERTED_COLUMNS` order.
fn bind_events<'q>(
    mut insert: Statement<'q>,
    about: &'q ConnectionRow,
    events: &'q [NewEvent],
) -> Statement<'q> {
    for event in events {
        let (state, next_attempt, finished) = if event.deliver {
            (DeliveryState::Pending, Some(event.at), None)
        } else {
            (DeliveryState::NotSent, None, Some(event.at))
        };
        insert = insert
            .bind(event.id.as_str())
            .bind(event.event.as_str())
            .bind(about.id.as_str())
            .bind(about.kind.as_str())
            .bind(event.reason)
            .bind(event.at)
            .bind(state.as_str())
            .bind(next_attempt)
            .bind(finished);
        insert = bind_end_user(insert, about.profile.end_user.as_ref())
            .bind(about.profile.tags.to_json());
    }
    insert
}

pub(super) fn decode_event(row: &AnyRow) -> Result<EventRow, StoreError> {
    let id: String = row.try_get("id")?;
    let event: String = row.try_get("event")?;
    let connection_id: String = row.try_get("connection_id")?;
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    Ok(EventRow {
        seq: row.try_get("seq")?,
        id: EventId::parse(&id).ok_or_else(|| corrupt("event id"))?,
        event: EventType::from_stored(&event).ok_or_else(|| corrupt("event type"))?,
        connection_id: ConnectionId::parse(&connection_id)
            .map_err(|_| corrupt("event connection id"))?,
        kind: ConnectionKind::from_stored(&kind).ok_or_else(|| corrupt("event kind"))?,
        reason: row.try_get("reason")?,
        at: row.try_get("created_at_ms")?,
        state: DeliveryState::from_stored(&state).ok_or_else(|| corrupt("event state"))?,
        round: row.try_get("round")?,
        tries: row.try_get("tries")?,
        next_attempt_at: row.try_get("next_attempt_ms")?,
        attempts: Attempt::parse_history(&row.try_get::<String, _>("attempts")?)?,
        profile: decode_profile(row)?,
    })
}

/// The statement `record_attempts` runs for `count` attempts, binding `$1`
/// to the owner and six values an attempt after it. Its text depends on the
/// count alone, so each batch size is prepared once and kept.
fn record_attempts_sql(count: usize) -> String {
    const TYPES: [&str; 6] = ["BIGINT", "BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT"];
    let rows = numbered_rows(count, TYPES.len(), 2, |column, parameter| {
        format!("CAST({parameter} AS {})", TYPES[column])
    });
    // An attempt of the current round moves the event on; one of a round a
    // redelivery replaced only joins its history.
    let this_round = "events.round = attempt.round";
    format!(
        "WITH attempt (seq, round, line, state, next_attempt_ms, finished_at_ms) AS (VALUES {rows})
         UPDATE events SET lease_until_ms = NULL, lease_owner = NULL,
           attempts = events.attempts || attempt.line,
           tries = CASE WHEN {this_round} THEN events.tries + 1 ELSE events.tries END,
           state = CASE WHEN {this_round} THEN attempt.state ELSE events.state END,
           next_attempt_ms = CASE WHEN {this_round} THEN attempt.next_attempt_ms ELSE events.next_attempt_ms END,
           finished_at_ms = CASE WHEN {this_round} THEN attempt.finished_at_ms ELSE events.finished_at_ms END
         FROM attempt
         WHERE events.seq = attempt.seq AND events.lease_owner = $1"
    )
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::{Attempt, AttemptError, AttemptRecord, DeliveryState};
    use crate::checked::ConnectionId;
    use crate::store::testing::save;
    use crate::store::{EventPage, EventRow, Store};

    fn delivered(at: i64) -> AttemptRecord {
        AttemptRecord {
            attempt: Attempt {
                at,
                status_code: Some(204),
                error: None,
            },
            state: DeliveryState::Delivered,
            next_attempt_at: None,
        }
    }

    async fn read_back(store: &Store, id: &ConnectionId) -> Vec<EventRow> {
        let page = EventPage {
            connection: Some(id),
            after: 0,
            limit: 10,
        };
        store.events_on(page).await.unwrap()
    }

    #[tokio::test]
    async fn a_batch_is_recorded_for_the_owner_and_an_old_round_only_joins_the_history() {
        let (store, _dir) = Store::temporary().await;
        let id = ConnectionId::parse("recorded").unwrap();
        assert!(save(&store, &id, 3).await);
        let now = 1_700_000_000_000;
        let claimed = store
            .claim_due_events(now, "me", now + 60_000, 32)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        // The third is redelivered while its attempt is in flight.
        store
            .redeliver(&claimed[2].id, now + 1)
            .await
            .unwrap()
            .unwrap();
        let batch: Vec<_> = claimed
            .iter()
            .map(|event| (event, delivered(now + 5)))
            .collect();
        assert_eq!(
            store.record_attempts("someone else", &batch).await.unwrap(),
            0
        );
        assert_eq!(store.record_attempts("me", &batch).await.unwrap(), 3);
        let events = read_back(&store, &id).await;
        for event in &events[..2] {
            assert_eq!((event.state, event.tries), (DeliveryState::Delivered, 1));
            assert_eq!(event.attempts, [delivered(now + 5).attempt]);
        }
        let redelivered = &events[2];
        assert_eq!(
            (redelivered.state, redelivered.tries, redelivered.round),
            (DeliveryState::Pending, 0, 1)
        );
        assert_eq!(redelivered.next_attempt_at, Some(now + 1));
        assert_eq!(redelivered.attempts, [delivered(now + 5).attempt]);
        // Its new round is claimed and recorded as any other.
        let again = store
            .claim_due_events(now + 10, "me", now + 60_000, 32)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        let batch = [(&again[0], delivered(now + 20))];
        assert_eq!(store.record_attempts("me", &batch).await.unwrap(), 1);
        let redelivered = &read_back(&store, &id).await[2];
        assert_eq!(
            (redelivered.state, redelivered.tries),
            (DeliveryState::Delivered, 1)
        );
        assert_eq!(redelivered.attempts.len(), 2);
    }

    /// Delivered events stay for their retention: a claim that walked past
    /// them would cost more with every event ever sent.
    #[tokio::test]
    async fn a_claim_reads_the_due_events_off_their_index_not_the_whole_outbox() {
        let (store, _dir) = Store::temporary().await;
        let plan = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", store.claim_sql()))
            .bind(0_i64)
            .bind("owner")
            .bind(0_i64)
            .bind(32_i64)
            .fetch_all(&mut *store.connection().await.unwrap())
            .await
            .unwrap();
        let steps: Vec<String> = plan.iter().map(|row| row.get("detail")).collect();
        assert!(
            steps
                .iter()
                .any(|step| step.contains("USING INDEX events_due")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN")),
            "{steps:?}"
        );
    }

    #[test]
    fn an_attempt_history_reads_back_as_written_and_nothing_else_reads() {
        let written = [
            Attempt {
                at: 1_700_000_000_123,
                status_code: Some(500),
                error: None,
            },
            Attempt {
                at: 1_700_000_005_000,
                status_code: None,
                error: Some(AttemptError::Unreachable),
            },
        ];
        let text: String = written.iter().map(Attempt::line).collect();
        assert_eq!(Attempt::parse_history(&text).unwrap(), written);
        assert_eq!(Attempt::parse_history("").unwrap(), []);
        for corrupt in ["x 500 -\n", "1 500\n", "1 - nonsense\n", "1 500 - extra\n"] {
            assert!(Attempt::parse_history(corrupt).is_err(), "{corrupt:?}");
        }
    }
}
