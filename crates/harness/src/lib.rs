//! The harness: run a Proxy-Wasm plugin against a scripted exchange and get back everything
//! that happened. `pwhost`, the conformance suite and the end-to-end tests run plugins through
//! it.
//!
//! - [`scripted`]: the exchange model ([`Exchange`], [`Step`]), the in-memory embedder
//!   ([`ScriptedEmbedder`]) and the runner ([`run_exchange`], [`Outcome`]).

pub mod scripted;

pub use scripted::{run_exchange, transcript_error, Exchange, LogRecord, Outcome, ScriptedEmbedder, Step, ECHO_FUNCTION};
