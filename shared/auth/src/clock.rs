//! The monotonic clock that paces JWKS refetches; injectable so a test can step past the
//! one-minute limit without waiting a minute. Token times (`exp`, `nbf`) use the system clock.

use std::fmt;
use std::time::Instant;

pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> Instant;
}

/// `Instant::now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}
