//! The runtime every part runs on: the supervision tree over the server's own actors
//! ([`system`]), the restart policies and their ledger ([`policy`]), the quiet panic hook
//! ([`panic_hook`]) and the fixed-rate schedule of real-time loops ([`ticker`]). Metrics
//! are at the same layer (`crate::metrics`).

pub mod panic_hook;
pub mod policy;
pub mod status;
pub mod system;
pub mod ticker;
