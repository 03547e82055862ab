//! The guest plugins: the cargo workspace `conformance/plugins`, built into the main
//! workspace's `target/guest/` for each [`Target`], and where each plugin lands.
//!
//! Cargo's fingerprints make a repeat build a no-op, so building on demand is cheap: tests
//! call [`path`], which builds once per process, and `cargo xtask build-plugins` calls
//! [`build`] ahead of time. Standard library only, so that xtask stays quick to build.
//!
//! Plugins of other SDKs and toolchains (older Rust SDKs, AssemblyScript, C, C++) are in
//! [`sdk`]; [`path`] and [`bytes`] find them by name too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub mod sdk;

/// A target the guest plugins are built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `wasm32-unknown-unknown`: what proxies load.
    Wasm32,
    /// `wasm32-wasip1`: the same plugins through Rust's WASI standard library.
    Wasip1,
    /// The host, as shared libraries, for the Null VM.
    Native,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 3] = [Target::Wasm32, Target::Wasip1, Target::Native];

    /// The Rust target triple, or `None` for the host.
    pub fn triple(self) -> Option<&'static str> {
        match self {
            Target::Wasm32 => Some("wasm32-unknown-unknown"),
            Target::Wasip1 => Some("wasm32-wasip1"),
            Target::Native => None,
        }
    }

    /// The file name of plugin crate `name` (`sdk-e2e` or `sdk_e2e`) on this target.
    pub fn file_name(self, name: &str) -> String {
        let name = name.replace('-', "_");
        match self {
            Target::Wasm32 | Target::Wasip1 => format!("{name}.wasm"),
            Target::Native => format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX),
        }
    }
}

/// The root of the main workspace.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}

/// The plugins workspace's manifest, relative to the workspace root.
pub const MANIFEST: &str = "conformance/plugins/Cargo.toml";

/// Cargo's target directory for guest builds, kept apart from host builds.
pub fn target_dir(root: &Path) -> PathBuf {
    root.join("target").join("guest")
}

/// The directory `target`'s plugins land in.
pub fn dir(root: &Path, target: Target) -> PathBuf {
    match target.triple() {
        Some(triple) => target_dir(root).join(triple).join("release"),
        None => target_dir(root).join("release"),
    }
}

/// The `cargo build` that builds every plugin for `target`, as program and arguments.
pub fn build_command(root: &Path, target: Target) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut argv = vec![cargo, "build".into(), "--release".into()];
    if let Some(triple) = target.triple() {
        argv.extend(["--target".into(), triple.into()]);
    }
    argv.extend([
        "--manifest-path".into(),
        root.join(MANIFEST).to_string_lossy().into_owned(),
        "--target-dir".into(),
        target_dir(root).to_string_lossy().into_owned(),
    ]);
    argv
}

/// Builds every plugin for `target`. The error names the command and says how to fix the
/// usual cause.
pub fn build(root: &Path, target: Target) -> Result<(), String> {
    let argv = build_command(root, target);
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", argv.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        let hint = match target.triple() {
            Some(triple) => format!("; if the target is missing, run `cargo xtask setup` (it adds {triple})"),
            None => String::new(),
        };
        Err(format!("building the guest plugins failed ({status}): `{}`{hint}", argv.join(" ")))
    }
}

/// Builds `target`'s plugins once per process (on first use) and returns the path of plugin
/// crate `name` (`sdk-e2e` or `sdk_e2e`), or of the [`sdk`] plugin of that name (`sdk-as`,
/// `sdk_as`; each built once per process too). The error says what failed or which file is
/// missing.
pub fn path(target: Target, name: &str) -> Result<PathBuf, String> {
    /// Each build made so far in this process (the workspace's by target, an SDK plugin's by
    /// its name and target), with how it went.
    type Builds = Mutex<Vec<((Target, &'static str), Result<PathBuf, String>)>>;
    static BUILT: OnceLock<Builds> = OnceLock::new();
    let root = workspace_root();
    let plugin = sdk::find(name);
    let key = (target, plugin.map_or("", |p| p.name));
    let built = {
        let mut builds = BUILT.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
        match builds.iter().find(|(k, _)| *k == key).map(|(_, r)| r.clone()) {
            Some(result) => result,
            None => {
                let result = match plugin {
                    Some(plugin) => sdk::build(&root, plugin, target),
                    None => build(&root, target).map(|()| dir(&root, target)),
                };
                builds.push((key, result.clone()));
                result
            }
        }
    }?;
    if plugin.is_some() {
        return Ok(built);
    }
    let file = built.join(target.file_name(name));
    if file.is_file() {
        Ok(file)
    } else {
        Err(format!("the guest plugins were built but {} is missing: no plugin crate `{name}`?", file.display()))
    }
}

/// The bytes of plugin crate `name` built for `target` (see [`path`]).
pub fn bytes(target: Target, name: &str) -> Result<Vec<u8>, String> {
    let file = path(target, name)?;
    std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// The plugin files in `target`'s directory, sorted by name, with their sizes.
pub fn list(root: &Path, target: Target) -> Result<Vec<(PathBuf, u64)>, String> {
    let dir = dir(root, target);
    let probe = target.file_name("x");
    let suffix = probe.rsplit_once('x').map_or("", |(_, s)| s);
    let prefix = probe.split_once('x').map_or("", |(p, _)| p);
    let mut files = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(suffix) && entry.path().is_file() {
            let size = entry.metadata().map_err(|e| format!("cannot read {name}: {e}"))?.len();
            files.push((entry.path(), size));
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_convention() {
        let root = Path::new("/w");
        assert_eq!(dir(root, Target::Wasm32), Path::new("/w/target/guest/wasm32-unknown-unknown/release"));
        assert_eq!(dir(root, Target::Wasip1), Path::new("/w/target/guest/wasm32-wasip1/release"));
        assert_eq!(dir(root, Target::Native), Path::new("/w/target/guest/release"));
        assert_eq!(Target::Wasm32.file_name("sdk-e2e"), "sdk_e2e.wasm");
        if cfg!(target_os = "linux") {
            assert_eq!(Target::Native.file_name("sdk-e2e"), "libsdk_e2e.so");
        }
    }

    #[test]
    fn the_build_command_names_target_manifest_and_target_dir() {
        let argv = build_command(Path::new("/w"), Target::Wasip1);
        assert_eq!(
            &argv[1..],
            [
                "build",
                "--release",
                "--target",
                "wasm32-wasip1",
                "--manifest-path",
                "/w/conformance/plugins/Cargo.toml",
                "--target-dir",
                "/w/target/guest"
            ]
        );
        assert!(!build_command(Path::new("/w"), Target::Native).contains(&"--target".to_string()));
    }

    #[test]
    fn the_manifest_is_where_the_root_says() {
        assert!(workspace_root().join(MANIFEST).is_file());
    }
}
