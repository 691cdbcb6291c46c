//! Test helpers for crates whose handlers are generic over `Billing`'s use cases (the
//! `test-util` feature; never in a deployed build).

use std::sync::Mutex;

use crate::Error;

/// One canned answer to one use case of a hand-written fake: given once by the test, taken
/// once by the call. A call the test gave no answer panics, so a test also proves which use
/// cases a request reached.
#[derive(Debug)]
pub struct Slot<T>(Mutex<Option<Result<T, Error>>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T> Slot<T> {
    /// What the next call answers.
    pub fn answer(&self, result: Result<T, Error>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    }

    /// The answer for a call of `use_case`.
    ///
    /// # Panics
    /// When the test gave `use_case` no answer.
    pub fn take(&self, use_case: &str) -> Result<T, Error> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| panic!("{use_case} was called, but the test gave it no answer"))
    }
}
