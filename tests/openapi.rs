//! The OpenAPI document (`GET /api/v1/openapi.json`, built in `src/web/openapi.rs` from the
//! handlers and their types) against the code: it parses, lists exactly the REST routes
//! `web::routes` registers, every error answer is the `ErrorBody` envelope with a status some
//! error code has, overload and limit answers carry `Retry-After`, the admin scheme is the
//! bearer token the server checks, and the schemas written by hand match what is served.
//! `scripts/schemathesis.sh` checks the running server's answers against it.

mod common;

use std::collections::BTreeSet;

use common::{test_config, TestServer};
use rampart::config::Secret;
use rampart::protocol::ErrorCode;
use serde_json::Value;

const ADMIN: &str = "openapi-admin-token";

async fn server() -> TestServer {
    let mut config = test_config();
    config.secrets.admin_token = Some(Secret::new(ADMIN.to_owned()));
    TestServer::start(config).await
}

/// The document as the server serves it.
async fn document(server: &TestServer) -> Value {
    let mut resp = server.client.get(server.url("/api/v1/openapi.json")).send().await.expect("get");
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let bytes = resp.body().limit(1 << 22).await.expect("body");
    serde_json::from_slice(&bytes).expect("the document is JSON")
}

/// Every operation as (METHOD, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), operation));
        }
    }
    out
}

/// Follows a `$ref` inside the document.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {r}"));
            resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}")))
        }
        None => value,
    }
}

/// The routes `web::routes` registers, read from its source: (METHOD, path).
fn registered_routes() -> Vec<(String, String)> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/mod.rs")).expect("source");
    let body = source.split("pub fn routes(").nth(1).expect("fn routes");
    let body = &body[..body.find("\n}\n").expect("end of fn routes")];
    let mut routes = Vec::new();
    for call in body.split(".route(").skip(1) {
        // The game kinds' pages are routed from the kinds table, without a literal.
        if call.starts_with("kind.page") {
            continue;
        }
        let path = call.split('"').nth(1).expect("a path literal").to_owned();
        let method =
            call.split("web::").nth(1).and_then(|m| m.split('(').next()).expect("web::METHOD()").to_uppercase();
        routes.push((method, path));
    }
    assert!(routes.len() > 10, "read too few routes: {routes:?}");
    routes
}

/// Routes that serve the browser (HTML and its assets), not the REST contract.
fn is_browser_route(path: &str) -> bool {
    path == "/"
        || path == "/dashboard"
        || rampart::game::kinds::KINDS.iter().any(|k| k.page == path)
        || path.starts_with("/static/")
}

#[actix_rt::test]
async fn the_document_is_served_once_and_parses_as_openapi_3_1() {
    let server = server().await;
    let doc = document(&server).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc, serde_json::from_str::<Value>(rampart::web::openapi::document()).expect("json"));
    // Every $ref resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        assert!(doc.pointer(r.trim_start_matches('#')).is_some(), "dangling $ref {r}");
    }
}

#[actix_rt::test]
async fn every_rest_route_registered_is_documented_and_nothing_else() {
    let server = server().await;
    let doc = document(&server).await;
    let registered: BTreeSet<(String, String)> =
        registered_routes().into_iter().filter(|(_, path)| !is_browser_route(path)).collect();
    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().map(|(m, p, _)| (m, p)).collect();
    let missing: Vec<_> = registered.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&registered).collect();
    assert!(missing.is_empty(), "registered in web::routes but not in the document: {missing:?}");
    assert!(extra.is_empty(), "in the document but not registered in web::routes: {extra:?}");
    for (method, path, operation) in operations(&doc) {
        assert!(operation["operationId"].is_string(), "{method} {path} has an operationId");
        assert!(operation["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path} has a tag");
    }
}

#[actix_rt::test]
async fn every_error_answer_is_the_error_body_with_a_status_some_code_has() {
    let server = server().await;
    let doc = document(&server).await;
    let envelope = &doc["components"]["schemas"]["ErrorEnvelope"];
    assert_eq!(envelope["properties"]["error"]["$ref"], "#/components/schemas/ErrorBody");
    assert_eq!(envelope["required"], serde_json::json!(["error"]));
    let body = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(body["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode");
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let wire: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, wire, "the document's error codes are ErrorCode's");
    let statuses: BTreeSet<u16> = ErrorCode::ALL.iter().map(|c| c.http_status()).collect();

    let mut errors = 0;
    for (method, path, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().expect("responses") {
            let code: u16 = status.parse().unwrap_or_else(|_| panic!("{method} {path}: status {status}"));
            if code < 400 {
                continue;
            }
            errors += 1;
            assert!(statuses.contains(&code), "{method} {path} {code}: no error code has this status");
            let response = resolve(&doc, response);
            let content = response["content"].as_object().unwrap_or_else(|| panic!("{method} {path} {code}: no body"));
            assert_eq!(content.keys().collect::<Vec<_>>(), ["application/json"], "{method} {path} {code}");
            let schema = &content["application/json"]["schema"];
            let direct = schema["$ref"] == "#/components/schemas/ErrorEnvelope";
            // /health's 503 is its own body or, past the connection ceiling, the error body.
            let one_of = resolve(&doc, schema)["oneOf"]
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s["$ref"] == "#/components/schemas/ErrorEnvelope"));
            assert!(direct || one_of, "{method} {path} {code}: not the ErrorBody envelope: {schema}");
        }
    }
    assert!(errors >= 50, "only {errors} error responses documented");
}

#[actix_rt::test]
async fn overload_limits_and_bodies_are_documented_with_retry_after() {
    let server = server().await;
    let doc = document(&server).await;
    let retry_after = |response: &Value| resolve(&doc, response)["headers"]["Retry-After"].clone();
    for (method, path, operation) in operations(&doc) {
        let responses = &operation["responses"];
        // Past server.max_connections any route answers 503 SERVER_BUSY with Retry-After.
        assert!(retry_after(&responses["503"]).is_object(), "{method} {path}: 503 with Retry-After");
        if operation.get("requestBody").is_some() {
            for status in ["400", "408", "413", "422"] {
                assert!(responses.get(status).is_some(), "{method} {path} reads a body: {status} documented");
            }
        }
        if path.starts_with("/ws/") {
            assert!(responses.get("101").is_some(), "{method} {path}: the upgrade");
        }
    }
    let create = &doc["paths"]["/api/v1/games"]["post"]["responses"];
    assert_eq!(retry_after(&create["429"])["required"], true, "RATE_LIMITED always carries Retry-After");
    // SERVER_BUSY does; DRAINING does not: not required there.
    assert!(retry_after(&create["503"]).get("required").is_none());
    for name in ["ConnectionCeiling", "GameUnavailable", "WaitlistUnavailable", "RateLimited"] {
        assert_eq!(doc["components"]["responses"][name]["headers"]["Retry-After"]["required"], true, "{name}");
    }
    let join = &doc["paths"]["/api/v1/games/{id}/join"]["post"]["responses"];
    assert_eq!(join["503"]["$ref"], "#/components/responses/GameUnavailable");
    for status in ["404", "409", "410"] {
        assert!(join.get(status).is_some(), "join documents {status}");
    }
    // The links are the specification's camel case.
    let link = &doc["paths"]["/api/v1/games"]["post"]["responses"]["201"]["links"]["GetGame"];
    assert_eq!(link["operationId"], "get_game");
    assert_eq!(link["parameters"]["id"], "$response.body#/game_id");
}

#[actix_rt::test]
async fn admin_endpoints_use_the_bearer_token_the_server_checks() {
    let server = server().await;
    let doc = document(&server).await;
    let scheme = &doc["components"]["securitySchemes"]["admin_token"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    for (method, path, operation) in operations(&doc) {
        let secured = operation.get("security").is_some();
        assert_eq!(secured, path.starts_with("/api/v1/admin/"), "{method} {path}: security");
        if secured {
            assert_eq!(operation["security"], serde_json::json!([{"admin_token": []}]), "{method} {path}");
            for status in ["401", "404"] {
                assert!(operation["responses"].get(status).is_some(), "{method} {path}: {status}");
            }
        }
    }
    // As the document says: without the token 401, with it the request goes through.
    let (status, body, _) = server.post_raw("/api/v1/admin/health", r#"{"status":null}"#, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("UNAUTHORIZED")));
    let (status, _, _) = server.post_raw("/api/v1/admin/health", r#"{"status":null}"#, Some(ADMIN)).await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn hand_written_schemas_name_exactly_the_fields_served() {
    let server = server().await;
    let doc = document(&server).await;
    let view = &doc["components"]["schemas"]["BreakerView"]["properties"];
    let (status, breaker) = server.get("/health/circuit-breakers/database").await;
    assert_eq!(status, 200);
    for field in ["config", "counters"] {
        let documented: BTreeSet<&String> = view[field]["properties"].as_object().expect(field).keys().collect();
        let served: BTreeSet<&String> = breaker[field].as_object().expect(field).keys().collect();
        assert_eq!(documented, served, "BreakerView.{field}");
        let required: BTreeSet<&str> =
            view[field]["required"].as_array().expect(field).iter().filter_map(Value::as_str).collect();
        assert_eq!(required.len(), served.len(), "BreakerView.{field}: every field is always there");
    }
    let view: BTreeSet<&String> = view.as_object().expect("BreakerView").keys().collect();
    let served: BTreeSet<&String> = breaker.as_object().expect("breaker").keys().collect();
    assert_eq!(view, served, "BreakerView");
}

#[actix_rt::test]
async fn socket_upgrades_answer_as_documented() {
    let server = server().await;
    let doc = document(&server).await;
    let lobby = &doc["paths"]["/ws/lobby"]["get"]["responses"];
    let game = &doc["paths"]["/ws/games/{id}"]["get"]["responses"];
    // A real upgrade is the 101 (the harness's socket would fail otherwise).
    let mut socket = server.lobby().await;
    assert!(lobby.get("101").is_some());
    let _ = socket.recv_type("lobby").await;
    // Plain GETs: 400 on the lobby and on a known game, 404 on an unknown one.
    let (status, body) = server.get("/ws/lobby").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("BAD_REQUEST")));
    assert!(lobby.get("400").is_some());
    let (status, body) = server.get("/ws/games/nosuchgame").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("GAME_NOT_FOUND")));
    assert!(game.get("404").is_some());
    let grant = server.create("ai", "ada").await;
    let (status, _) = server.get(&format!("/ws/games/{}", grant.game_id)).await;
    assert_eq!(status, 400);
    assert!(game.get("400").is_some());
    // The handshake headers are documented as required.
    let params = doc["paths"]["/ws/games/{id}"]["get"]["parameters"].as_array().expect("parameters");
    let headers: BTreeSet<&str> = params
        .iter()
        .filter(|p| p["in"] == "header" && p["required"] == true)
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(headers, BTreeSet::from(["Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Upgrade"]));
}
