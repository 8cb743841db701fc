//! What operators see: the admin endpoints, the metrics behind them, every observable event
//! (its log line and its metrics in one place), and the log set-up.

pub mod admin;
pub mod log_json;
pub mod logging;
pub mod metrics;
pub mod observe;
