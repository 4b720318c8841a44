//! Runtime-driven nodes: they hold elements and release them on a tokio task, by time
//! (`rate_limit`, `delay`, `timed_window`) or by capacity (`buffer`, `latest`).
//!
//! These are the nodes that make `emit` pend, and so the ones that carry brooklet's
//! backpressure promise: each is bounded, accepts what it is given (a dropped `Emit` future
//! loses nothing), and reports failures on its task on the next `emit` or at `close()`. They read
//! the tokio clock, so tests run them on a paused clock, exactly.

mod buffer;
