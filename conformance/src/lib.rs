//! Guest plugins for tests, benches and the conformance suite.
//!
//! The plugins live in `conformance/plugins/`, a cargo workspace of its own built for
//! `wasm32-unknown-unknown`. [`guest`] returns a plugin's `.wasm`, building the workspace first
//! (cargo's own fingerprints make that a no-op when nothing changed), so `cargo test` works
//! without a separate step; `cargo xtask build-plugins` does the same ahead of time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("conformance/ has a parent").to_path_buf()
}

/// Where the guest plugins are written.
pub fn guest_dir() -> PathBuf {
    workspace_root().join("target/guest/wasm32-unknown-unknown/release")
}

/// Builds the guest plugins once per process; the error says what failed and how to fix it.
pub fn build_guests() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(&cargo)
                .current_dir(&root)
                .args(["build", "--quiet", "--release", "--target", "wasm32-unknown-unknown", "--manifest-path"])
                .arg(root.join("conformance/plugins/Cargo.toml"))
                .arg("--target-dir")
                .arg(root.join("target/guest"))
                .status()
                .map_err(|e| format!("cannot run {cargo} to build the guest plugins: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!(
                    "building the guest plugins failed ({status}); run `cargo xtask setup` \
                     (it installs the wasm32-unknown-unknown target), then retry"
                ))
            }
        })
        .clone()
}

/// The bytes of guest plugin `name` (its crate name with `-` as `_`), built if needed.
///
/// # Panics
/// When the plugins cannot be built or the file is missing: tests cannot run without them.
pub fn guest(name: &str) -> Vec<u8> {
    if let Err(e) = build_guests() {
        panic!("{e}");
    }
    let path = guest_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read guest plugin {}: {e}", path.display()))
}
