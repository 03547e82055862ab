//! The conformance suite: cases as data files, run on every engine built in, each compared
//! with one golden transcript that every engine must reproduce.
//!
//! - [`case`]: a case file (`conformance/cases/<group>/<name>.yaml`): a description, the guest
//!   plugin, what the case needs of an engine, and an exchange in the harness's format. Its golden
//!   transcript sits beside it (`<name>.transcript`).
//! - [`runner`]: runs a case on an engine and judges it: pass, fail (with why) or unsupported
//!   (with what the engine lacks).
//! - [`report`]: the case-by-engine matrix, as text, Markdown and JSON.
//! - [`coverage`]: which host functions and callbacks the golden transcripts exercise.
//!
//! The guest plugins are built by the `guest-plugins` crate; [`guest`] reads one.

pub mod case;
pub mod coverage;
pub mod report;
pub mod runner;

use std::path::PathBuf;

pub use guest_plugins::Target;

/// The bytes of guest plugin crate `name` (for example `sdk_e2e`) built for
/// `wasm32-unknown-unknown`, building the plugins first if needed.
///
/// # Panics
/// When the plugins cannot be built or read: tests cannot run without them.
pub fn guest(name: &str) -> Vec<u8> {
    guest_plugins::bytes(Target::Wasm32, name).unwrap_or_else(|e| panic!("{e}"))
}

/// The directory of the case files.
pub fn cases_dir() -> PathBuf {
    guest_plugins::workspace_root().join("conformance").join("cases")
}
