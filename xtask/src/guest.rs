//! The guest plugins: a cargo workspace of its own in `conformance/plugins`,
//! built for wasm32 into the main workspace's `target/guest`.
//!
//! Tests find a plugin by this path convention, relative to the workspace root:
//! `target/guest/wasm32-unknown-unknown/release/<crate_name>.wasm`, where
//! `<crate_name>` is the package name with `-` turned into `_`
//! (`sdk-e2e` -> `sdk_e2e.wasm`).

use std::path::{Path, PathBuf};

use crate::{cargo, step, Error};

/// The Rust target guest plugins are built for.
pub const GUEST_TARGET: &str = "wasm32-unknown-unknown";

/// The plugins workspace's manifest, relative to the workspace root.
pub const PLUGINS_MANIFEST: &str = "conformance/plugins/Cargo.toml";

/// Cargo's target directory for guest builds (kept apart from host builds).
pub fn guest_target_dir(root: &Path) -> PathBuf {
    root.join("target").join("guest")
}

/// The directory the built `.wasm` files are in.
pub fn plugin_dir(root: &Path) -> PathBuf {
    guest_target_dir(root).join(GUEST_TARGET).join("release")
}

/// The `.wasm` file of plugin package `package` (`sdk-e2e` or `sdk_e2e`).
pub fn plugin_path(root: &Path, package: &str) -> PathBuf {
    plugin_dir(root).join(format!("{}.wasm", package.replace('-', "_")))
}

/// A built plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPlugin {
    /// `<crate_name>.wasm`.
    pub file_name: String,
    /// Its full path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Builds every guest plugin (cargo's fingerprints make a repeat build a no-op)
/// and lists the `.wasm` files, sorted by name.
pub fn build(root: &Path) -> Result<Vec<BuiltPlugin>, Error> {
    step("building guest plugins");
    let target_dir = guest_target_dir(root);
    cargo(root)
        .args([
            "build",
            "--release",
            "--target",
            GUEST_TARGET,
            "--manifest-path",
            PLUGINS_MANIFEST,
        ])
        .arg("--target-dir")
        .arg(target_dir.to_string_lossy())
        .run("cargo build of guest plugins")?;
    let dir = plugin_dir(root);
    let entries = std::fs::read_dir(&dir).map_err(|error| {
        Error::failed(format!(
            "cannot list guest plugins in {}: {error}",
            dir.display()
        ))
    })?;
    let mut plugins = Vec::new();
    for entry in entries {
        let entry = entry
            .map_err(|error| Error::failed(format!("cannot list {}: {error}", dir.display())))?;
        let path = entry.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "wasm")
        {
            let size = entry
                .metadata()
                .map_err(|error| Error::failed(format!("cannot read {}: {error}", path.display())))?
                .len();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            plugins.push(BuiltPlugin {
                file_name,
                path,
                size,
            });
        }
    }
    if plugins.is_empty() {
        return Err(Error::failed(format!(
            "cargo built the guest plugins but {} holds no .wasm file",
            dir.display()
        )));
    }
    plugins.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(plugins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_paths_follow_the_convention() {
        let root = Path::new("/w");
        let expected = Path::new("/w/target/guest/wasm32-unknown-unknown/release/sdk_e2e.wasm");
        assert_eq!(plugin_path(root, "sdk-e2e"), expected);
        assert_eq!(plugin_path(root, "sdk_e2e"), expected);
        assert_eq!(
            plugin_path(root, "raw-minimal"),
            Path::new("/w/target/guest/wasm32-unknown-unknown/release/raw_minimal.wasm")
        );
    }

    #[test]
    fn plugins_manifest_exists() {
        assert!(crate::workspace_root().join(PLUGINS_MANIFEST).is_file());
    }
}
