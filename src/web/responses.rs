//! The REST contract's shared responses, each defined once: the error responses several
//! operations answer (each `{"error":{…}}`, [`ErrorEnvelope`], with its codes and, where it
//! always carries one, `Retry-After`), and `/health`'s 503 body. A handler names the ones
//! that are its own (`response = responses::GameUnavailable`); those every operation of a
//! kind answers (a body read, the admin token, the connection ceiling) are added to each by
//! the document (`openapi::CommonErrors`).

use serde::Serialize;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{ToResponse, ToSchema};

use crate::protocol::views::HealthBody;
use crate::protocol::ErrorEnvelope;

/// What `/health` answers with 503: its own body (overloaded, draining, supervisor down),
/// or, past the connection ceiling, the error every route answers there.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum HealthUnavailable {
    /// Not taking new games, or unable to host them.
    Health(Box<HealthBody>),
    /// SERVER_BUSY `reason: "connections"`.
    Busy(ErrorEnvelope),
}

/// The shared error responses, each `{"error":{…}}` with its codes; those named here always
/// carry `Retry-After`, and the document says so (`required`).
pub const ALWAYS_RETRY_AFTER: [&str; 5] =
    ["RateLimited", "ConnectionCeiling", "GameUnavailable", "WaitlistUnavailable", "ActorUnavailable"];

/// The `Retry-After` header: whole seconds, rounded up from `details.retry_after_ms`.
pub fn retry_after() -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)));
    header.description =
        Some("Seconds to wait before retrying: `details.retry_after_ms` rounded up, at least 1.".to_owned());
    header
}

/// An error response whose body is the envelope.
fn error_response(name: &str, description: &str) -> Response {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))));
    if ALWAYS_RETRY_AFTER.contains(&name) {
        response = response.header("Retry-After", retry_after());
    }
    response.build()
}

macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident => $description:expr;)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error_response(stringify!($name), $description).into())
            }
        }
    )+};
}

error_responses! {
    /// 400 for a body that is not the documented shape.
    BadRequest => "BAD_REQUEST: the body is not JSON, not a JSON object, lacks a field, has a field \
        of the wrong type or an unknown field.";
    /// 401 on an admin endpoint.
    Unauthorized => "UNAUTHORIZED: the `Authorization: Bearer <admin token>` header is missing or wrong.";
    /// 408 from the body deadline.
    RequestTimeout => "REQUEST_TIMEOUT: the body did not arrive within `server.body_timeout_ms`; the \
        connection is closed.";
    /// 413 for a body over the limit.
    PayloadTooLarge => "PAYLOAD_TOO_LARGE: the body is over `server.max_frame_bytes` (`details.max_bytes`); \
        the connection is closed.";
    /// 422 for a well-formed body with a wrong value.
    ValidationFailed => "VALIDATION_FAILED: a value is out of range; `details.field` names it, \
        `details.allowed` lists the accepted values where there is a list.";
    /// 429 from the per-client limits.
    RateLimited => "RATE_LIMITED: this client creates games or holds tickets faster than the \
        per-client limits allow; nothing was queued. Retry after `Retry-After`.";
    /// 500.
    Internal => "INTERNAL: a server fault (never an internal message); after a game crash \
        `details.incident` names the log entry and the game is being restored.";
    /// 503 past the connection ceiling, which every route can answer.
    ConnectionCeiling => "SERVER_BUSY with `reason: \"connections\"`: the server holds its maximum of \
        connections (`server.max_connections`); the connection is closed. Retry after `Retry-After`.";
    /// 503 for a game that cannot answer now.
    GameUnavailable => "GAME_RESTARTING: the game cannot answer now (recovering from a crash, moving \
        to a fresh thread or another instance; for a real-time game's socket, `reason: \"elsewhere\"`: \
        another live instance hosts it); nothing was applied, retry after `Retry-After`. Or \
        SERVER_BUSY `reason: \"connections\"` (the connection ceiling).";
    /// 503 for a system actor that takes no messages.
    ActorUnavailable => "SERVER_BUSY: the system actor takes no messages (past its restart limit, the \
        process is ending; or its mailbox is full), or the connection ceiling (`reason: \"connections\"`). \
        Retry after `Retry-After`.";
    /// 503 for a waitlist store that cannot answer.
    WaitlistUnavailable => "SERVER_BUSY: the waitlist store cannot answer (`retry_after_ms` 2000), \
        another instance may hold the ticket (`reason: \"elsewhere\"`, `retry_after_ms` 1000: it is not lost), \
        or the connection ceiling (`reason: \"connections\"`). Retry after `Retry-After`.";
}
