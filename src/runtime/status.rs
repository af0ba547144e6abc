//! The server's health [`Status`] and the [`HealthChanged`] signal the HealthMonitor
//! broadcasts: below every part that reacts to it (admission, the game supervisor's
//! shedding of ended games), so none of them imports the monitor.

use actix::Message;
use serde::Serialize;

/// The server's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every vital is below its degraded level.
    Healthy,
    /// A vital is near its limit: running games are fine, new games are still admitted
    /// within the caps.
    Degraded,
    /// A vital is at its limit: new games wait in line.
    Overloaded,
}

impl Status {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Overloaded => "overloaded",
        }
    }
}

/// The health status changed.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct HealthChanged(pub Status);
