//! The `Idempotency-Key` store (docs/toss-api.md §6).
//!
//! Records are keyed by (secret key, method, path, key); the body is not part of the match.
//! A record lives 15 days on the sandbox clock from its first use.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::faults::Endpoint;

pub const MAX_KEY_CHARS: usize = 300;

pub fn retention() -> Duration {
    Duration::days(15)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    pub secret_key: String,
    pub method: String,
    pub path: String,
    pub idempotency_key: String,
}

/// A stored first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// `None` for the empty body of a successful delete.
    pub body: Option<String>,
}

#[derive(Debug, Clone)]
pub enum RecordState {
    /// The first request is still being processed; `token` identifies its reservation.
    InFlight {
        token: u64,
    },
    Done(StoredResponse),
}

#[derive(Debug, Clone)]
pub struct Record {
    pub mid: String,
    pub endpoint: Endpoint,
    pub created_at: DateTime<Utc>,
    pub state: RecordState,
    pub replays: u64,
}

/// What the store says about an incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// New (or expired) key: the caller owns the reservation with this token.
    Reserved { token: u64 },
    /// The first answer, to send again.
    Replay(StoredResponse),
    /// The first request is still in flight.
    InFlight,
}

#[derive(Debug, Default)]
pub struct IdempotencyStore {
    records: HashMap<RecordKey, Record>,
    next_token: u64,
}

impl IdempotencyStore {
    pub fn admit(
        &mut self,
        key: RecordKey,
        mid: &str,
        endpoint: Endpoint,
        now: DateTime<Utc>,
    ) -> Admission {
        if let Some(record) = self.records.get_mut(&key)
            && now < record.created_at + retention()
        {
            return match &record.state {
                RecordState::InFlight { .. } => Admission::InFlight,
                RecordState::Done(response) => {
                    record.replays += 1;
                    Admission::Replay(response.clone())
                }
            };
        }
        self.next_token += 1;
        let token = self.next_token;
        self.records.insert(
            key,
            Record {
                mid: mid.to_owned(),
                endpoint,
                created_at: now,
                state: RecordState::InFlight { token },
                replays: 0,
            },
        );
        Admission::Reserved { token }
    }

    /// Store the first answer for a reservation.
    pub fn complete(&mut self, key: &RecordKey, token: u64, response: StoredResponse) {
        if let Some(record) = self.records.get_mut(key)
            && matches!(record.state, RecordState::InFlight { token: t } if t == token)
        {
            record.state = RecordState::Done(response);
        }
    }

    /// Forget a reservation that produced no answer to keep (injected faults, dropped requests).
    pub fn release(&mut self, key: &RecordKey, token: u64) {
        if self
            .records
            .get(key)
            .is_some_and(|r| matches!(r.state, RecordState::InFlight { token: t } if t == token))
        {
            self.records.remove(key);
        }
    }

    pub fn records(&self) -> impl Iterator<Item = (&RecordKey, &Record)> {
        self.records.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RecordKey {
        RecordKey {
            secret_key: "test_sk_x".into(),
            method: "POST".into(),
            path: "/v1/billing/abc".into(),
            idempotency_key: "k1".into(),
        }
    }

    fn ok() -> StoredResponse {
        StoredResponse {
            status: 200,
            body: Some("{}".into()),
        }
    }

    #[test]
    fn a_completed_key_replays_its_first_answer() {
        let mut store = IdempotencyStore::default();
        let now = Utc::now();
        let Admission::Reserved { token } = store.admit(key(), "m", Endpoint::Charge, now) else {
            panic!("first use must reserve");
        };
        store.complete(&key(), token, ok());
        assert_eq!(
            store.admit(key(), "m", Endpoint::Charge, now),
            Admission::Replay(ok())
        );
    }

    #[test]
    fn a_key_in_flight_answers_in_flight() {
        let mut store = IdempotencyStore::default();
        let now = Utc::now();
        store.admit(key(), "m", Endpoint::Charge, now);
        assert_eq!(
            store.admit(key(), "m", Endpoint::Charge, now),
            Admission::InFlight
        );
    }

    #[test]
    fn a_key_older_than_fifteen_days_starts_over() {
        let mut store = IdempotencyStore::default();
        let now = Utc::now();
        let Admission::Reserved { token } = store.admit(key(), "m", Endpoint::Charge, now) else {
            panic!("first use must reserve");
        };
        store.complete(&key(), token, ok());
        let later = now + retention() + Duration::seconds(1);
        assert!(matches!(
            store.admit(key(), "m", Endpoint::Charge, later),
            Admission::Reserved { .. }
        ));
    }

    #[test]
    fn a_released_reservation_lets_the_next_request_run() {
        let mut store = IdempotencyStore::default();
        let now = Utc::now();
        let Admission::Reserved { token } = store.admit(key(), "m", Endpoint::Charge, now) else {
            panic!("first use must reserve");
        };
        store.release(&key(), token);
        assert!(matches!(
            store.admit(key(), "m", Endpoint::Charge, now),
            Admission::Reserved { .. }
        ));
    }
}
