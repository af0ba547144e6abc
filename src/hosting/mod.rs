//! Hosting: the games this instance runs, whatever their kind. One directory of hosted
//! games ([`registry`]) whose entries are turn-based or real-time actors ([`turn`],
//! [`tick`]) driven by the same messages ([`messages`]); the [`supervisor`] that places,
//! watches, restarts, leases and takes them over; the [`relay`] that carries a seat on
//! another instance to the owner. A turn-based game's frames wait in its [`outbox`] until
//! the change they follow is durable. The generic supervision tree, the restart policies and
//! the ticker are below, in `runtime`; snapshots are the store's (`store::snapshot`).

pub mod env;
pub mod messages;
pub mod outbox;
pub mod ownership;
pub mod registry;
pub mod relay;
mod relay_order;
pub mod relay_proxy;
mod relay_subscription;
pub mod relay_wire;
pub mod supervisor;
pub mod tick;
pub mod tick_handlers;
pub mod turn;
pub mod turn_ai;
pub mod turn_handlers;
