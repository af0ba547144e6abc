//! The REST contract as an OpenAPI 3.1 document, generated from the code: the handlers'
//! `#[utoipa::path]` attributes in [`super`] (every status each one answers), the wire
//! types' `ToSchema` derives in [`crate::protocol`], and the shared error responses below.
//! Built once and served at `GET /api/v1/openapi.json`; `scripts/schemathesis.sh` checks
//! the running server against it.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

use crate::protocol::views::HealthBody;
use crate::protocol::ErrorEnvelope;

/// The name of the admin endpoints' security scheme.
pub const ADMIN_SCHEME: &str = "admin_token";

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart",
        description = "The REST contract of the Rampart game server, generated from the handlers and \
            their types. The prose, the WebSocket frames and the close codes: docs/PROTOCOL.md. \
            Every error body is `{\"error\":{\"code\",\"message\",\"details\"}}` (`ErrorEnvelope`); \
            branch on `code`. Unknown paths, and known paths with a wrong method, answer 404 \
            NOT_FOUND (there is no 405). A request the HTTP layer cannot parse (400) or whose head \
            is too large (431) is refused before any handler, with an empty body."
    ),
    paths(
        super::create_game,
        super::list_games,
        super::list_kinds,
        super::get_game,
        super::join_game,
        super::waitlist_status,
        super::waitlist_leave,
        super::health,
        super::breakers_health,
        super::breaker_health,
        super::metrics,
        super::breakers_metrics,
        super::inject_fault,
        super::inject_actor_fault,
        super::breaker_action,
        super::health_override,
        super::game_socket,
        super::lobby_socket,
        serve,
    ),
    components(
        schemas(ErrorEnvelope),
        responses(
            BadRequest,
            Unauthorized,
            RequestTimeout,
            PayloadTooLarge,
            ValidationFailed,
            RateLimited,
            Internal,
            ConnectionCeiling,
            GameUnavailable,
            ActorUnavailable,
            WaitlistUnavailable
        )
    ),
    modifiers(&AdminToken),
    tags(
        (name = "games", description = "Create, list, read and join games."),
        (name = "waitlist", description = "The line a refused creation waits in (SERVER_BUSY with a ticket)."),
        (name = "operations", description = "Health, breakers, metrics and this document."),
        (name = "admin", description = "Drills: faults, breakers, forced health. Only with RAMPART_ADMIN_TOKEN."),
        (name = "sockets", description = "The WebSocket upgrades; their frames are in docs/PROTOCOL.md.")
    )
)]
pub struct ApiDoc;

/// The admin endpoints' bearer token (`RAMPART_ADMIN_TOKEN`).
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(
            "`Authorization: Bearer <token>`, the token the server was started with in \
             RAMPART_ADMIN_TOKEN (compared in constant time). A missing or wrong token is 401 \
             UNAUTHORIZED. Without RAMPART_ADMIN_TOKEN the admin endpoints do not exist: 404 NOT_FOUND.",
        ));
        components.add_security_scheme(ADMIN_SCHEME, SecurityScheme::Http(scheme.build()));
    }
}

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
const ALWAYS_RETRY_AFTER: [&str; 5] =
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
        or the connection ceiling (`reason: \"connections\"`). Retry after `Retry-After`.";
}

/// The document as JSON: generated, then two things utoipa 5.5 cannot say put right.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        // Each shared response that always carries `Retry-After` says so: utoipa's response
        // headers have no `required`.
        for name in ALWAYS_RETRY_AFTER {
            if let Some(Value::Object(header)) =
                doc.pointer_mut(&format!("/components/responses/{name}/headers/Retry-After"))
            {
                header.insert("required".to_owned(), Value::Bool(true));
            }
        }
        // utoipa serialises a Link Object's fields in snake case (`operation_id`); the
        // specification's names are camel case.
        for link in links(&mut doc) {
            for (from, to) in
                [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")]
            {
                if let Some(value) = link.remove(from) {
                    link.insert(to.to_owned(), value);
                }
            }
        }
        serde_json::to_string(&doc).unwrap_or_default()
    })
}

/// Every Link Object of every response of every operation.
fn links(doc: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else { return Vec::new() };
    paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses").and_then(Value::as_object_mut))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(Value::as_object_mut))
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut)
        .collect()
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1), generated from the code.", body = Object),
        (status = 503, response = ConnectionCeiling),
    )
)]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}
