//! Supervision: game actors, the supervisor that places, restarts, leases and takes over
//! games, restart policies, the registry that routes sockets to games, and the quiet panic
//! hook; above them, the root of the tree over the server's own actors (`system`); the
//! fixed-rate schedule of real-time games (`ticker`).
//! (Snapshots are the store's: `store::snapshot`.)

pub mod cycles;
pub mod game_actor;
pub mod panic_hook;
pub mod policy;
pub mod registry;
pub mod supervisor;
pub mod system;
pub mod ticker;
