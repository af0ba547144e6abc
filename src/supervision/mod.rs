//! Supervision: game actors, the supervisor that places and restarts them, restart
//! policies, snapshots, the registry that routes sockets to games, and the quiet panic hook.

pub mod game_actor;
pub mod panic_hook;
pub mod policy;
pub mod registry;
pub mod snapshot;
pub mod supervisor;
