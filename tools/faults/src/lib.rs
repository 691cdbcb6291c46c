//! The fault-injection suite lives in `tests/`; `src/bin/sweep-worker.rs` is the sweep process
//! those tests kill at a step boundary.
