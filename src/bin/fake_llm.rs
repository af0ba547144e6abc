//! fake_llm: a small OpenAI-compatible chat-completions server with fault modes, so the
//! tests, the demo and the benchmarks exercise the AI's LLM path over real HTTP.
//!
//! ```text
//! fake_llm [--listen 127.0.0.1:8089] [--mode ok|http500|http429|slow|hang|malformed_json]
//!          [--delay-ms 1500] [--reply "text"]
//! ```
//!
//! It prints `fake_llm listening on http://ADDR` once bound (`--listen 127.0.0.1:0` picks a
//! free port). The mode can be changed while it runs:
//!
//! ```text
//! curl -s localhost:8089/control                                   # mode, delay, reply, requests
//! curl -s localhost:8089/control -d '{"mode":"http500"}'           # every request fails
//! curl -s localhost:8089/control -d '{"mode":"slow","delay_ms":5000}'
//! curl -s localhost:8089/control/last_request                      # what the server sent last
//! ```
//!
//! Modes: `ok` answers with the reply text; `http500` and `http429` answer with that status
//! (429 with `Retry-After: 1`); `slow` waits `delay_ms` and then answers; `hang` never
//! answers (the client's timeout must cut it); `malformed_json` answers 200 with a body that
//! is not JSON. A request without a `messages` array gets a 400, as the real API does.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::{json, Value};

const MODES: [&str; 6] = ["ok", "http500", "http429", "slow", "hang", "malformed_json"];

/// The switchable behaviour.
#[derive(Clone, Debug)]
struct Behaviour {
    mode: String,
    delay_ms: u64,
    reply: String,
}

struct Fake {
    behaviour: Mutex<Behaviour>,
    requests: AtomicU64,
    last_request: Mutex<Value>,
}

impl Fake {
    fn behaviour(&self) -> Behaviour {
        self.behaviour.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn describe(&self) -> Value {
        let b = self.behaviour();
        json!({"mode": b.mode, "delay_ms": b.delay_ms, "reply": b.reply, "requests": self.requests.load(Ordering::SeqCst)})
    }
}

fn api_error(status: actix_web::http::StatusCode, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {"message": message, "type": kind, "code": null}}))
}

async fn completions(fake: web::Data<Fake>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return api_error(actix_web::http::StatusCode::BAD_REQUEST, "invalid_request_error", "the body is not JSON");
    };
    if !request["messages"].is_array() {
        return api_error(actix_web::http::StatusCode::BAD_REQUEST, "invalid_request_error", "messages is required");
    }
    let authorized = req.headers().get(header::AUTHORIZATION).is_some();
    *fake.last_request.lock().unwrap_or_else(|e| e.into_inner()) =
        json!({"body": request, "authorization_present": authorized});
    let b = fake.behaviour();
    match b.mode.as_str() {
        "http500" => api_error(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, "server_error", "fake failure"),
        "http429" => HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, "1"))
            .json(json!({"error": {"message": "rate limited", "type": "rate_limit_exceeded", "code": null}})),
        "hang" => std::future::pending().await,
        "malformed_json" => HttpResponse::Ok().content_type("application/json").body("{\"choices\": [{\"message\": "),
        mode => {
            if mode == "slow" {
                tokio::time::sleep(Duration::from_millis(b.delay_ms)).await;
            }
            let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let n = fake.requests.load(Ordering::SeqCst);
            HttpResponse::Ok().json(json!({
                "id": format!("chatcmpl-fake-{n}"),
                "object": "chat.completion",
                "created": created,
                "model": request["model"].as_str().unwrap_or("fake"),
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": b.reply},
                    "finish_reason": "stop",
                }],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    mode: Option<String>,
    delay_ms: Option<u64>,
    reply: Option<String>,
}

async fn get_control(fake: web::Data<Fake>) -> HttpResponse {
    HttpResponse::Ok().json(fake.describe())
}

async fn set_control(fake: web::Data<Fake>, body: web::Bytes) -> HttpResponse {
    let control: Control = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return HttpResponse::BadRequest().json(json!({"error": format!("bad control body: {e}")})),
    };
    if let Some(mode) = &control.mode {
        if !MODES.contains(&mode.as_str()) {
            return HttpResponse::UnprocessableEntity().json(json!({"error": "unknown mode", "allowed": MODES}));
        }
    }
    {
        let mut b = fake.behaviour.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mode) = control.mode {
            b.mode = mode;
        }
        if let Some(delay_ms) = control.delay_ms {
            b.delay_ms = delay_ms;
        }
        if let Some(reply) = control.reply {
            b.reply = reply;
        }
    }
    let now = fake.describe();
    // Never panic on a closed pipe: whoever started us may have stopped reading.
    let _ = writeln!(std::io::stderr(), "fake_llm: now {now}");
    HttpResponse::Ok().json(now)
}

async fn last_request(fake: web::Data<Fake>) -> HttpResponse {
    HttpResponse::Ok().json(fake.last_request.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

fn usage(problem: &str) -> ! {
    eprintln!("fake_llm: {problem}");
    eprintln!("usage: fake_llm [--listen ADDR] [--mode {}] [--delay-ms N] [--reply TEXT]", MODES.join("|"));
    std::process::exit(64);
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut listen = "127.0.0.1:8089".to_owned();
    let mut behaviour =
        Behaviour { mode: "ok".to_owned(), delay_ms: 1500, reply: "Fake LLM here: interesting move!".to_owned() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--listen" => listen = value(),
            "--mode" => behaviour.mode = value(),
            "--delay-ms" => behaviour.delay_ms = value().parse().unwrap_or_else(|_| usage("--delay-ms takes a number")),
            "--reply" => behaviour.reply = value(),
            "-h" | "--help" => usage("an OpenAI-compatible fake with fault modes"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if !MODES.contains(&behaviour.mode.as_str()) {
        usage(&format!("unknown mode {:?}", behaviour.mode));
    }
    let fake = web::Data::new(Fake {
        behaviour: Mutex::new(behaviour),
        requests: AtomicU64::new(0),
        last_request: Mutex::default(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(fake.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .route("/v1/chat/completions", web::post().to(completions))
            .route("/control", web::get().to(get_control))
            .route("/control", web::post().to(set_control))
            .route("/control/last_request", web::get().to(last_request))
    })
    .workers(1)
    .shutdown_timeout(1)
    .bind(&listen)?;
    for addr in server.addrs() {
        let mut out = std::io::stdout();
        writeln!(out, "fake_llm listening on http://{addr}")?;
        out.flush()?;
    }
    server.run().await
}
