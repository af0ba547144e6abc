//! The REST contract as an OpenAPI 3.1 document, generated from the code: the handlers'
//! `#[utoipa::path]` attributes in [`super::players`], [`super::operators`] and
//! [`super::admin`] (the statuses that are each one's own), the error responses every
//! operation of a kind answers, added by `CommonErrors` (so the document names every
//! status each route answers), the shared responses of [`super::responses`], and the wire
//! types' `ToSchema` derives in [`crate::protocol`]. Built once and served at
//! `GET /api/v1/openapi.json`; `scripts/schemathesis.sh` checks the running server against
//! it.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::Ref;
use utoipa::{Modify, OpenApi, ToResponse};

use crate::protocol::ErrorEnvelope;
use crate::web::responses::{
    ActorUnavailable, BadRequest, ConnectionCeiling, GameUnavailable, Internal, PayloadTooLarge, RateLimited,
    RequestTimeout, Unauthorized, ValidationFailed, WaitlistUnavailable, ALWAYS_RETRY_AFTER,
};

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
        super::players::create_game,
        super::players::list_games,
        super::players::list_kinds,
        super::players::get_game,
        super::players::join_game,
        super::players::waitlist_status,
        super::players::waitlist_leave,
        super::operators::health,
        super::operators::breakers_health,
        super::operators::breaker_health,
        super::operators::metrics,
        super::operators::breakers_metrics,
        super::admin::inject_fault,
        super::admin::inject_actor_fault,
        super::admin::breaker_action,
        super::admin::health_override,
        super::players::game_socket,
        super::players::lobby_socket,
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
    modifiers(&AdminToken, &CommonErrors),
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

/// The error responses every operation of a kind answers, added to each operation that
/// does not document that status itself (its own answer there says more, as a game's 503
/// does):
///
/// - every operation: 503 SERVER_BUSY past the connection ceiling ([`ConnectionCeiling`]);
/// - an operation that reads a body: 400, 408, 413 and 422 ([`BadRequest`],
///   [`RequestTimeout`], [`PayloadTooLarge`], [`ValidationFailed`]: `read_json` and the
///   body deadline);
/// - an admin operation (the bearer token): 401 ([`Unauthorized`]).
struct CommonErrors;

impl CommonErrors {
    /// The shared responses `operation` answers by its kind of request, as (status, name).
    fn of(operation: &Operation) -> Vec<(&'static str, &'static str)> {
        fn name<R: ToResponse<'static>>() -> &'static str {
            R::response().0
        }
        let mut common = vec![("503", name::<ConnectionCeiling>())];
        if operation.request_body.is_some() {
            common.extend([
                ("400", name::<BadRequest>()),
                ("408", name::<RequestTimeout>()),
                ("413", name::<PayloadTooLarge>()),
                ("422", name::<ValidationFailed>()),
            ]);
        }
        let token = SecurityRequirement::new(ADMIN_SCHEME, Vec::<String>::new());
        if operation.security.iter().flatten().any(|requirement| *requirement == token) {
            common.push(("401", name::<Unauthorized>()));
        }
        common
    }
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let methods = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in methods.into_iter().flatten() {
                for (status, name) in Self::of(operation) {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| Ref::from_response_name(name).into());
                }
            }
        }
    }
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
    )
)]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}
