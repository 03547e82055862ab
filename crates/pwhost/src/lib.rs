//! `pwhost`: run Proxy-Wasm plugins against scripted exchanges, on any engine built in.
//!
//! A thin command line over [`proxy_wasm_harness`], which holds the exchange format, the
//! runner, the JSON report and the engines by name. The library is [`cli`], written against
//! output streams so that tests run the command line in process.

pub mod abort;
pub mod cli;
