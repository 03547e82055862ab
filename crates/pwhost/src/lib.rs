//! `pwhost`: run Proxy-Wasm plugins against scripted exchanges, on any engine built in.
//!
//! The binary is flags plus glue; the library holds what the conformance suite and the
//! benchmarks share with it:
//! - [`engines`]: engines by name, picked by Cargo feature at build time;
//! - [`exchange`]: the exchange file format (YAML);
//! - [`report`]: what happened, as JSON;
//! - [`cli`]: the command line itself.

pub mod cli;
pub mod engines;
pub mod exchange;
pub mod report;
