//! The AI's chat through a real LLM over HTTP: the shipped `fake_llm` binary runs as its own
//! process on a free port, and each test switches its fault mode at run time. The server
//! runs in-process with its llm breaker pointed at it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, test_config, Player, TestServer, DEADLINE};
use rampart::config::{Config, Secret};
use serde_json::{json, Value};

/// The fake LLM server, stopped when dropped.
struct FakeLlm {
    child: Child,
    url: String,
    client: awc::Client,
}

impl FakeLlm {
    fn start() -> FakeLlm {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake_llm"))
            .args(["--listen", "127.0.0.1:0", "--reply", "Well played, human."])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fake_llm");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read the address");
        let url = line.trim().strip_prefix("fake_llm listening on ").expect("the listening line").to_owned();
        FakeLlm { child, url, client: awc::Client::builder().timeout(Duration::from_secs(5)).finish() }
    }

    async fn control(&self, body: Value) -> Value {
        let mut resp = self.client.post(format!("{}/control", self.url)).send_json(&body).await.expect("control");
        assert!(resp.status().is_success(), "control {body}");
        resp.json().await.expect("control json")
    }

    async fn requests(&self) -> u64 {
        let mut resp = self.client.get(format!("{}/control", self.url)).send().await.expect("control");
        resp.json::<Value>().await.expect("json")["requests"].as_u64().expect("requests")
    }

    async fn last_request(&self) -> Value {
        let mut resp = self.client.get(format!("{}/control/last_request", self.url)).send().await.expect("last");
        resp.json().await.expect("json")
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CANNED: [&str; 2] = ["canned one", "canned two"];

fn llm_config(fake: &FakeLlm) -> Config {
    let mut c = test_config();
    c.llm.base_url = fake.url.clone();
    c.llm.timeout_ms = 2000;
    c.llm.comment_probability = 0.0;
    c.llm.canned_lines = CANNED.iter().map(|s| (*s).to_owned()).collect();
    c.secrets.llm_api_key = Some(Secret::new("sk-test-key".to_owned()));
    let llm = c.circuit_breakers.breakers.get_mut("llm").expect("llm breaker");
    llm.failure_threshold = 2;
    llm.open_secs = 0.3;
    llm.open_max_secs = 0.3;
    llm.jitter = 0.0;
    llm.call_timeout_ms = 1000;
    c
}

/// Says `text` to the AI and waits for its answer.
async fn ask(player: &mut Player, text: &str) -> String {
    player.send(json!({"type": "chat", "text": text})).await;
    let line = player.recv_until("the AI's chat line", |v| v["type"] == "chat" && v["from"] == "ai").await;
    line["text"].as_str().expect("text").to_owned()
}

async fn breaker(server: &TestServer, name: &str) -> Value {
    let (status, body) = server.get(&format!("/health/circuit-breakers/{name}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn wait_breaker(server: &TestServer, name: &str, state: &str) -> Value {
    let probe = || async move {
        let b = breaker(server, name).await;
        if b["state"] == state {
            Ok(b)
        } else {
            Err(b.to_string())
        }
    };
    eventually(DEADLINE, &format!("{name} becomes {state}"), probe).await
}

#[actix_rt::test]
async fn model_text_reaches_the_players_cleaned_and_the_request_carries_the_game() {
    let fake = FakeLlm::start();
    let mut config = llm_config(&fake);
    config.llm.comment_probability = 1.0;
    config.server.max_chat_chars = 40;
    let server = TestServer::start(config).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;

    red.move_to(3).await;
    let remark = red.recv_until("the AI's remark", |v| v["type"] == "chat" && v["from"] == "ai").await;
    assert_eq!(remark["text"], "Well played, human.");
    let sent = fake.last_request().await;
    assert_eq!(sent["authorization_present"], true, "the API key is sent");
    let prompt = sent["body"]["messages"][1]["content"].as_str().expect("user message").to_owned();
    assert!(prompt.contains("ada") && prompt.contains("R") && prompt.contains("Y"), "{prompt}");
    assert!(sent["body"]["max_tokens"].as_u64().is_some());

    // Untrusted text: control characters and whitespace runs go, the length is capped.
    fake.control(json!({"reply": "  <b>hi</b>\u{7}\n\n  there  ".to_owned() + &"x".repeat(100)})).await;
    let answer = ask(&mut red, "what do you think?").await;
    assert!(answer.starts_with("<b>hi</b> there xx"), "{answer}");
    assert_eq!(answer.chars().count(), 40);
    let sent = fake.last_request().await;
    assert!(sent["body"]["messages"][1]["content"].as_str().expect("user").contains("what do you think?"));
    assert_eq!(breaker(&server, "llm").await["enabled"], true);
}

#[actix_rt::test]
async fn a_failing_llm_opens_the_breaker_the_ai_falls_back_and_recovers() {
    let fake = FakeLlm::start();
    let mut config = llm_config(&fake);
    // Open for 1 s: long enough that the checks made while open run before it half-opens.
    let llm = config.circuit_breakers.breakers.get_mut("llm").expect("llm breaker");
    (llm.open_secs, llm.open_max_secs) = (1.0, 1.0);
    let server = TestServer::start(config).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    assert_eq!(ask(&mut red, "hello").await, "Well played, human.");

    fake.control(json!({"mode": "http500"})).await;
    for _ in 0..2 {
        assert!(CANNED.contains(&ask(&mut red, "still there?").await.as_str()), "falls back to a canned line");
    }
    let open = wait_breaker(&server, "llm", "open").await;
    assert_eq!(open["counters"]["failure"], 2);
    let (_, health) = server.get("/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["checks"]["circuit_breakers"]["open"], json!(["llm"]));

    // While open, the AI answers from its canned lines without calling the LLM, and moves flow.
    let calls = fake.requests().await;
    let before = breaker(&server, "llm").await["counters"]["rejected"].as_u64().expect("rejected");
    assert!(CANNED.contains(&ask(&mut red, "are you broken?").await.as_str()));
    let game = red.last_state.clone();
    red.move_to(0).await;
    let moves = game["moves"].as_u64().expect("moves");
    red.recv_state(|g| g["moves"].as_u64() == Some(moves + 2)).await;
    let after = breaker(&server, "llm").await;
    assert_eq!(after["state"], "open", "{after}");
    assert!(after["counters"]["rejected"].as_u64() > Some(before), "an open breaker refuses without calling");
    assert_eq!(fake.requests().await, calls, "no request reached the LLM while open");

    // The fake recovers; after the open period a probe goes through and closes the breaker.
    fake.control(json!({"mode": "ok"})).await;
    // (Asking in a tight loop would hit the socket's frame rate limit: wait for the end of
    // the open period instead, then the next line is the probe.)
    let probe = || async {
        match breaker(&server, "llm").await["open_remaining_ms"].as_u64() {
            Some(ms) if ms > 0 => Err(format!("{ms} ms left")),
            _ => Ok(()),
        }
    };
    eventually(DEADLINE, "the open period ends", probe).await;
    assert_eq!(ask(&mut red, "back?").await, "Well played, human.", "the probe reached the recovered LLM");
    let closed = wait_breaker(&server, "llm", "closed").await;
    assert!(closed["transitions"].as_u64() >= Some(3), "closed → open → half_open → closed: {closed}");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("rampart_circuit_breaker_transitions_total{name=\"llm\",from=\"half_open\",to=\"closed\"} 1")
    );
    assert!(metrics.contains("rampart_circuit_breaker_state{name=\"llm\",state=\"closed\"} 1"));
    let (_, health) = server.get("/health").await;
    assert_eq!(health["status"], "healthy");
}

#[actix_rt::test]
async fn a_hanging_llm_is_cut_by_the_call_timeout_and_moves_never_wait() {
    let fake = FakeLlm::start();
    let mut config = llm_config(&fake);
    config.circuit_breakers.breakers.get_mut("llm").expect("llm").call_timeout_ms = 200;
    config.llm.comment_probability = 1.0;
    let server = TestServer::start(config).await;
    fake.control(json!({"mode": "hang"})).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    // The AI comments after its move (a request that hangs) but its moves keep coming.
    for (i, column) in [0, 1, 2].into_iter().enumerate() {
        red.move_to(column).await;
        red.recv_state(|g| g["moves"].as_u64() == Some(2 * (i as u64 + 1))).await;
    }
    // A human's words wait for the hanging remark to be cut, then are cut themselves.
    assert!(CANNED.contains(&ask(&mut red, "hello?").await.as_str()));
    let b = wait_breaker(&server, "llm", "open").await;
    assert!(b["counters"]["timeout"].as_u64() >= Some(2), "{b}");
    let (_, metrics) = server.get("/metrics/circuit-breakers").await;
    let llm =
        metrics["breakers"].as_array().expect("breakers").iter().find(|b| b["name"] == "llm").cloned().expect("llm");
    assert!(llm["duration_seconds"]["sum"].as_f64() >= Some(0.4), "{llm}");
}

#[actix_rt::test]
async fn every_fault_mode_falls_back_to_a_canned_line() {
    let fake = FakeLlm::start();
    let mut config = llm_config(&fake);
    let llm = config.circuit_breakers.breakers.get_mut("llm").expect("llm");
    llm.failure_threshold = 100;
    llm.call_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    for (mode, counter) in [("http429", "failure"), ("malformed_json", "failure"), ("slow", "timeout")] {
        fake.control(json!({"mode": mode, "delay_ms": 2000})).await;
        let before = breaker(&server, "llm").await["counters"][counter].as_u64().expect("counter");
        let line = ask(&mut red, "talk to me").await;
        assert!(CANNED.contains(&line.as_str()), "{mode}: {line}");
        let after = breaker(&server, "llm").await["counters"][counter].as_u64().expect("counter");
        assert_eq!(after, before + 1, "{mode} counts as {counter}");
    }
    assert_eq!(breaker(&server, "llm").await["state"], "closed", "under the threshold");
}

#[actix_rt::test]
async fn an_https_base_url_speaks_tls() {
    // The fake speaks plain HTTP, so a TLS handshake with it must fail: the AI falls back
    // and the llm breaker counts a failure. (Had the client sent plain HTTP, the fake would
    // have answered and the reply would have reached the player.)
    let fake = FakeLlm::start();
    let mut config = llm_config(&fake);
    config.llm.base_url = fake.url.replacen("http://", "https://", 1);
    let server = TestServer::start(config).await;
    let grant = server.create("ai", "ada").await;
    let mut red = server.player(&grant).await;
    assert!(CANNED.contains(&ask(&mut red, "hello over tls?").await.as_str()));
    assert_eq!(breaker(&server, "llm").await["counters"]["failure"], 1);
    assert_eq!(fake.last_request().await, Value::Null, "no plain-HTTP request reached the fake");
}
