//! Events: the durable journal, its in-memory tail, and webhook delivery
//! through the notifier helper process.

pub mod journal;
pub mod kinds;
pub mod log;
pub mod notifier;
