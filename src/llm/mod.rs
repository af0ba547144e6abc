//! The LLM client: how the AI player talks. One OpenAI-compatible chat-completion request
//! per remark, off the game actor, through the "llm" circuit breaker with a timeout. Model
//! text is untrusted: it is cleaned and trimmed to the chat limit here, and clients render
//! it as text. With no `base_url` the client is disabled and the AI uses canned lines.

use std::cell::RefCell;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::{BreakerError, CircuitBreaker, Outcome};
use crate::config::{LlmConfig, Secret};

/// Why the AI got no line from the LLM. The AI then uses a canned line or stays silent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// No `llm.base_url` configured.
    #[error("no LLM is configured")]
    Disabled,
    /// The llm breaker is open (or its probes are taken): the call was not made.
    #[error("the llm circuit breaker refused the call ({0})")]
    Rejected(String),
    /// The call took longer than its timeout.
    #[error("the LLM did not answer within {0} ms")]
    Timeout(u64),
    /// The endpoint answered with an HTTP error.
    #[error("the LLM answered HTTP {0}")]
    Http(u16),
    /// The answer was not the documented JSON shape, or had no usable text.
    #[error("the LLM answer was unusable: {0}")]
    Malformed(String),
    /// Connecting or reading failed.
    #[error("could not reach the LLM: {0}")]
    Transport(String),
}

impl LlmError {
    /// How the breaker counts it: our own bad request must not trip it.
    fn outcome(&self) -> Outcome {
        match self {
            LlmError::Http(400 | 413 | 422) => Outcome::Ignored,
            _ => Outcome::Failure,
        }
    }
}

/// What the AI is reacting to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// The AI just moved.
    AiMoved {
        /// The move in the game's words, e.g. "dropped your yellow disc in column 4".
        what: String,
    },
    /// The human said something to the AI.
    HumanSaid {
        /// Their words (already validated as a chat line).
        text: String,
    },
}

/// The game context sent with a request.
#[derive(Debug, Clone)]
pub struct ChatContext {
    /// The game's name, e.g. "Connect Four".
    pub game: &'static str,
    /// The position as the game describes it (Connect Four: the rows, top first, with a
    /// legend).
    pub board: String,
    /// Moves played.
    pub moves: u32,
    /// The human's name.
    pub opponent: String,
    /// What happened.
    pub event: ChatEvent,
}

/// The client. Cheap to share; the HTTP client itself is per thread (awc is not `Send`).
pub struct LlmClient {
    config: LlmConfig,
    api_key: Option<Secret>,
    breaker: CircuitBreaker,
    max_chars: usize,
}

thread_local! {
    static HTTP: RefCell<Option<awc::Client>> = const { RefCell::new(None) };
}

/// The TLS settings for https endpoints: rustls with the ring provider and the Mozilla
/// roots (webpki-roots), built once. `None` only if the provider refuses its own defaults.
fn tls_config() -> Option<std::sync::Arc<rustls::ClientConfig>> {
    static TLS: std::sync::OnceLock<Option<std::sync::Arc<rustls::ClientConfig>>> = std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(builder) => Some(std::sync::Arc::new(builder.with_root_certificates(roots).with_no_client_auth())),
            Err(e) => {
                tracing::error!("TLS for the LLM client could not be set up; https endpoints will fail: {e}");
                None
            }
        }
    })
    .clone()
}

fn http_client() -> awc::Client {
    HTTP.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let mut connector = awc::Connector::new();
                if let Some(tls) = tls_config() {
                    connector = connector.rustls_0_23(tls);
                }
                awc::Client::builder().connector(connector).disable_timeout().finish()
            })
            .clone()
    })
}

impl LlmClient {
    /// A client for `config`, calling through `breaker`, trimming answers to `max_chars`.
    pub fn new(config: LlmConfig, api_key: Option<Secret>, breaker: CircuitBreaker, max_chars: usize) -> Self {
        LlmClient { config, api_key, breaker, max_chars }
    }

    /// Whether an endpoint is configured.
    pub fn enabled(&self) -> bool {
        !self.config.base_url.is_empty()
    }

    /// A random canned line.
    pub fn canned_line(&self, rng: &mut fastrand::Rng) -> Option<String> {
        (!self.config.canned_lines.is_empty())
            .then(|| self.config.canned_lines[rng.usize(..self.config.canned_lines.len())].clone())
    }

    /// Chance that the AI comments after its own move.
    pub fn comment_probability(&self) -> f64 {
        self.config.comment_probability
    }

    /// Asks the model for one line. Never panics; every failure is an [`LlmError`].
    pub async fn chat(&self, context: &ChatContext) -> Result<String, LlmError> {
        if !self.enabled() {
            return Err(LlmError::Disabled);
        }
        let request = self.request_body(context);
        let url = format!("{}/v1/chat/completions", self.config.base_url.trim_end_matches('/'));
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let key = self.api_key.as_ref().map(|k| format!("Bearer {}", k.expose()));
        let call = async move {
            let mut req = http_client().post(&url).timeout(timeout).insert_header(("content-type", "application/json"));
            if let Some(key) = key {
                req = req.insert_header(("authorization", key));
            }
            let mut resp =
                req.send_body(serde_json::to_string(&request).unwrap_or_default()).await.map_err(|e| match e {
                    awc::error::SendRequestError::Timeout => LlmError::Timeout(timeout.as_millis() as u64),
                    other => LlmError::Transport(other.to_string()),
                })?;
            let status = resp.status();
            let body = resp.body().limit(256 * 1024).await.map_err(|e| LlmError::Transport(e.to_string()))?;
            if !status.is_success() {
                return Err(LlmError::Http(status.as_u16()));
            }
            let reply: Completion = serde_json::from_slice(&body).map_err(|e| LlmError::Malformed(e.to_string()))?;
            reply
                .choices
                .into_iter()
                .next()
                .and_then(|c| c.message.content)
                .ok_or_else(|| LlmError::Malformed("no choices[0].message.content".to_owned()))
        };
        let text = self.breaker.call(call, |r: &Result<String, LlmError>| match r {
            Ok(_) => Outcome::Success,
            Err(e) => e.outcome(),
        });
        match text.await {
            Ok(text) => clean(&text, self.max_chars).ok_or_else(|| LlmError::Malformed("empty text".to_owned())),
            Err(BreakerError::Inner(e)) => Err(e),
            Err(BreakerError::Timeout { after_ms }) => Err(LlmError::Timeout(after_ms)),
            Err(BreakerError::Rejected { state, .. }) => Err(LlmError::Rejected(state.as_str().to_owned())),
        }
    }

    fn request_body<'a>(&'a self, context: &ChatContext) -> CompletionRequest<'a> {
        let situation = match &context.event {
            ChatEvent::AiMoved { what } => {
                format!("You just {what}. Make a short remark to {}.", context.opponent)
            }
            ChatEvent::HumanSaid { text } => format!("{} (red) says to you: {text}", context.opponent),
        };
        let user = format!("{}, {} moves played. {}\n{situation}", context.game, context.moves, context.board);
        CompletionRequest {
            model: &self.config.model,
            max_tokens: self.config.max_tokens,
            temperature: self.config.temperature,
            messages: [
                Message { role: "system", content: self.config.system_prompt.clone() },
                Message { role: "user", content: user },
            ],
        }
    }
}

/// The OpenAI-compatible `/v1/chat/completions` request, as much of it as we send.
#[derive(Serialize)]
struct CompletionRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    temperature: f64,
    messages: [Message; 2],
}

#[derive(Serialize)]
struct Message {
    role: &'static str,
    content: String,
}

/// The part of the completion reply we read: `choices[0].message.content`.
#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

/// Untrusted model text made safe for the chat: control characters dropped, whitespace
/// collapsed, trimmed to `max_chars` on a character boundary. `None` if nothing is left.
pub fn clean(text: &str, max_chars: usize) -> Option<String> {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cleaned: String = collapsed.chars().filter(|c| !c.is_control()).take(max_chars).collect();
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_text_is_cleaned_and_trimmed() {
        assert_eq!(clean("  hello\n\tthere\u{7} ", 280).as_deref(), Some("hello there"));
        assert_eq!(clean(&"é".repeat(500), 280).map(|s| s.chars().count()), Some(280));
        assert_eq!(clean(" \n ", 280), None);
        assert_eq!(clean("<b>hi</b>", 280).as_deref(), Some("<b>hi</b>"), "markup stays text; clients render text");
    }

    #[test]
    fn https_endpoints_get_a_tls_client_with_the_webpki_roots() {
        assert!(tls_config().is_some(), "rustls with ring builds its default configuration");
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 50, "the Mozilla roots are there");
    }

    #[test]
    fn our_own_bad_requests_do_not_trip_the_breaker() {
        assert_eq!(LlmError::Http(400).outcome(), Outcome::Ignored);
        assert_eq!(LlmError::Http(500).outcome(), Outcome::Failure);
        assert_eq!(LlmError::Http(429).outcome(), Outcome::Failure);
        assert_eq!(LlmError::Timeout(5).outcome(), Outcome::Failure);
    }
}
