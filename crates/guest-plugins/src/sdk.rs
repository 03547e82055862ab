//! Guest plugins from other SDKs and toolchains than the plugins workspace: older Rust SDK
//! releases (each a cargo workspace of its own, for its lock file), AssemblyScript on
//! `@solo-io/proxy-runtime` (npm), and C and C++ against the raw ABI (Debian's clang).
//!
//! Each is built from source on first use, like the workspace's plugins, and only when an input
//! changed: a build is skipped when its output is newer than every input and was made by the
//! same command (kept beside the output in `<file>.cmd`). The tools come from the set-up path
//! (`cargo xtask setup`): the Debian packages in [`DEBIAN_PACKAGES`] for C and C++, and Node.js
//! with npm for AssemblyScript, whose packages `npm ci` installs from the committed
//! `package-lock.json` into `target/guest/sdk/npm` (nothing global, nothing in the source tree).
//!
//! | guest (case name) | file | SDK | targets |
//! | --- | --- | --- | --- |
//! | `sdk-rust-0.1` | `sdk_rust_v0_1` | proxy-wasm 0.1.4 (ABI 0.1.0) | wasm32, native |
//! | `sdk-rust-0.2.0` | `sdk_rust_v0_2_0` | proxy-wasm 0.2.0 (ABI 0.2.1) | wasm32, native |
//! | `sdk-rust-0.2.1` | `sdk_rust_v0_2_1` | proxy-wasm 0.2.1 (ABI 0.2.1) | wasm32, native |
//! | `sdk-as` | `sdk_as` | @solo-io/proxy-runtime 0.1.8, assemblyscript 0.14.13 (ABI 0.2.0) | wasm32 |
//! | `sdk-as-set-buffer-status` | `sdk_as_set_buffer_status` | the same; imports a host function with a type no host has | wasm32 |
//! | `sdk-c` | `sdk_c` | C, wasi-libc, clang 14 (ABI 0.2.1) | wasm32 (wasm32-wasi reactor) |
//! | `sdk-cpp` | `sdk_cpp` | C++17, libc++, clang 14 (ABI 0.2.1) | wasm32 (wasm32-wasi reactor) |

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::Target;

/// Debian packages the C and C++ plugins build with: clang and lld for `wasm32-wasi`, the WASI
/// C library, the compiler's builtins for wasm32 (without them linking fails on
/// `libclang_rt.builtins-wasm32.a`), and libc++ with libc++abi for C++.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "clang",
    "lld",
    "wasi-libc",
    "libclang-rt-14-dev-wasm32",
    "libc++-14-dev-wasm32",
    "libc++abi-14-dev-wasm32",
];

/// How a plugin is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// A cargo workspace of its own, `conformance/plugins/<dir>`, built with `--locked` for
    /// wasm32-unknown-unknown and natively into the workspace plugins' target directory.
    Cargo {
        /// Its directory under `conformance/plugins`.
        dir: &'static str,
    },
    /// AssemblyScript: an entry file of `conformance/plugins/sdk-as/assembly`, compiled by the
    /// `asc` that `package-lock.json` pins, with `--use abort=abort_proc_exit -O` as the
    /// runtime's README asks.
    AssemblyScript {
        /// The entry file's name.
        entry: &'static str,
    },
    /// C or C++ (by the file's extension) under `conformance/plugins`, compiled by Debian's
    /// clang for `wasm32-wasi` as a reactor with `malloc` exported.
    Clang {
        /// The source file, relative to `conformance/plugins`.
        source: &'static str,
    },
}

/// One plugin of another SDK or toolchain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdkPlugin {
    /// The name conformance cases use (`guest: sdk-as`).
    pub guest: &'static str,
    /// The built file's stem (`sdk_as` for `sdk_as.wasm`).
    pub name: &'static str,
    /// What it is built with, for people.
    pub sdk: &'static str,
    /// How it is built.
    pub toolchain: Toolchain,
}

/// Every plugin of another SDK or toolchain.
pub const PLUGINS: &[SdkPlugin] = &[
    SdkPlugin {
        guest: "sdk-rust-0.1",
        name: "sdk_rust_v0_1",
        sdk: "Rust proxy-wasm 0.1.4 (ABI 0.1.0)",
        toolchain: Toolchain::Cargo { dir: "sdk-rust-0.1" },
    },
    SdkPlugin {
        guest: "sdk-rust-0.2.0",
        name: "sdk_rust_v0_2_0",
        sdk: "Rust proxy-wasm 0.2.0 (ABI 0.2.1)",
        toolchain: Toolchain::Cargo { dir: "sdk-rust-0.2.0" },
    },
    SdkPlugin {
        guest: "sdk-rust-0.2.1",
        name: "sdk_rust_v0_2_1",
        sdk: "Rust proxy-wasm 0.2.1 (ABI 0.2.1)",
        toolchain: Toolchain::Cargo { dir: "sdk-rust-0.2.1" },
    },
    SdkPlugin {
        guest: "sdk-as",
        name: "sdk_as",
        sdk: "AssemblyScript 0.14.13, @solo-io/proxy-runtime 0.1.8 (ABI 0.2.0)",
        toolchain: Toolchain::AssemblyScript { entry: "index.ts" },
    },
    SdkPlugin {
        guest: "sdk-as-set-buffer-status",
        name: "sdk_as_set_buffer_status",
        sdk: "AssemblyScript 0.14.13, @solo-io/proxy-runtime 0.1.8 (ABI 0.2.0)",
        toolchain: Toolchain::AssemblyScript { entry: "set_buffer_status.ts" },
    },
    SdkPlugin {
        guest: "sdk-c",
        name: "sdk_c",
        sdk: "C with wasi-libc, Debian clang 14 (ABI 0.2.1)",
        toolchain: Toolchain::Clang { source: "sdk-c/plugin.c" },
    },
    SdkPlugin {
        guest: "sdk-cpp",
        name: "sdk_cpp",
        sdk: "C++17 with libc++, Debian clang 14 (ABI 0.2.1)",
        toolchain: Toolchain::Clang { source: "sdk-cpp/plugin.cc" },
    },
];

/// The plugin a case or a file stem names (`sdk-as` or `sdk_as`), if it is one of [`PLUGINS`].
pub fn find(name: &str) -> Option<&'static SdkPlugin> {
    PLUGINS.iter().find(|p| p.guest == name || p.name == name)
}

/// `conformance/plugins` under the workspace root.
fn plugins_dir(root: &Path) -> PathBuf {
    root.join("conformance").join("plugins")
}

/// Where plugins that cargo does not build land: `target/guest/sdk`.
pub fn sdk_dir(root: &Path) -> PathBuf {
    crate::target_dir(root).join("sdk")
}

/// Where `npm ci` installs the AssemblyScript packages: `target/guest/sdk/npm`.
pub fn npm_dir(root: &Path) -> PathBuf {
    sdk_dir(root).join("npm")
}

impl SdkPlugin {
    /// Whether it builds natively (for the Null VM): the Rust ones do.
    pub fn native(&self) -> bool {
        matches!(self.toolchain, Toolchain::Cargo { .. })
    }

    /// Why it has no native build, for a Null VM report; `None` when it has one.
    pub fn wasm_only(&self) -> Option<&'static str> {
        match self.toolchain {
            Toolchain::Cargo { .. } => None,
            Toolchain::AssemblyScript { .. } => {
                Some("an AssemblyScript plugin: AssemblyScript compiles to Wasm only, and this engine runs native code")
            }
            Toolchain::Clang { .. } => {
                Some("a C/C++ plugin built for wasm32-wasi only (no native build here), and this engine runs native code")
            }
        }
    }

    /// The targets it is built for.
    pub fn targets(&self) -> &'static [Target] {
        if self.native() {
            &[Target::Wasm32, Target::Native]
        } else {
            &[Target::Wasm32]
        }
    }

    /// Where its build for `target` lands.
    pub fn output(&self, root: &Path, target: Target) -> PathBuf {
        match self.toolchain {
            Toolchain::Cargo { .. } => crate::dir(root, target).join(target.file_name(self.name)),
            _ => sdk_dir(root).join(format!("{}.wasm", self.name)),
        }
    }

    /// The command that builds it for `target`, as program and arguments (`asc` runs under
    /// `node`; `npm ci` comes first, see [`npm_ci_command`]).
    pub fn build_command(&self, root: &Path, target: Target) -> Vec<String> {
        let plugins = plugins_dir(root);
        let s = |p: &Path| p.to_string_lossy().into_owned();
        match self.toolchain {
            Toolchain::Cargo { dir } => {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let mut argv = vec![cargo, "build".into(), "--release".into(), "--locked".into()];
                if let Some(triple) = target.triple() {
                    argv.extend(["--target".into(), triple.into()]);
                }
                argv.extend([
                    "--manifest-path".into(),
                    s(&plugins.join(dir).join("Cargo.toml")),
                    "--target-dir".into(),
                    s(&crate::target_dir(root)),
                ]);
                argv
            }
            Toolchain::AssemblyScript { entry } => {
                let modules = npm_dir(root).join("node_modules");
                vec![
                    "node".into(),
                    s(&modules.join("assemblyscript").join("bin").join("asc")),
                    s(&plugins.join("sdk-as").join("assembly").join(entry)),
                    "--path".into(),
                    s(&modules),
                    "--use".into(),
                    "abort=abort_proc_exit".into(),
                    "-O".into(),
                    "--binaryFile".into(),
                    s(&self.output(root, target)),
                ]
            }
            Toolchain::Clang { source } => {
                let cpp = source.ends_with(".cc");
                let mut argv: Vec<String> = vec![if cpp { "clang++" } else { "clang" }.into()];
                argv.extend(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wall", "-Werror"].map(String::from));
                if cpp {
                    argv.extend(["-std=c++17", "-fno-exceptions"].map(String::from));
                }
                argv.extend([
                    format!("-I{}", s(&plugins.join("c-abi"))),
                    "-Wl,--export=malloc".into(),
                    "-o".into(),
                    s(&self.output(root, target)),
                    s(&plugins.join(source)),
                ]);
                argv
            }
        }
    }

    /// The source files its build reads (cargo tracks its own).
    fn inputs(&self, root: &Path) -> Vec<PathBuf> {
        let plugins = plugins_dir(root);
        match self.toolchain {
            Toolchain::Cargo { .. } => Vec::new(),
            Toolchain::AssemblyScript { .. } => {
                let mut files = vec![plugins.join("sdk-as").join("package-lock.json")];
                if let Ok(entries) = std::fs::read_dir(plugins.join("sdk-as").join("assembly")) {
                    files.extend(entries.flatten().map(|e| e.path()));
                }
                files
            }
            Toolchain::Clang { source } => {
                vec![plugins.join(source), plugins.join("c-abi").join("proxy_wasm_abi.h")]
            }
        }
    }
}

/// `npm ci` in [`npm_dir`]: installs exactly what `package-lock.json` says, running no package
/// scripts.
pub fn npm_ci_command() -> Vec<String> {
    ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"].map(String::from).to_vec()
}

/// Builds `plugin` for `target` unless its output is up to date; returns the output's path.
/// The error names the command that failed and what it printed, or the missing tool and how to
/// get it.
pub fn build(root: &Path, plugin: &SdkPlugin, target: Target) -> Result<PathBuf, String> {
    if !plugin.targets().contains(&target) {
        return Err(format!(
            "plugin `{}` ({}) is not built for {target:?}: {}",
            plugin.guest,
            plugin.sdk,
            plugin.wasm_only().unwrap_or("no such target")
        ));
    }
    let output = plugin.output(root, target);
    let argv = plugin.build_command(root, target);
    match plugin.toolchain {
        // Cargo's own fingerprints make a repeat build a no-op.
        Toolchain::Cargo { .. } => {
            run(&argv, root)?;
        }
        Toolchain::AssemblyScript { .. } | Toolchain::Clang { .. } => {
            let stamp = output.with_extension("wasm.cmd");
            let command_line = argv.join(" ");
            if is_fresh(&output, &stamp, &command_line, &plugin.inputs(root)) {
                return Ok(output);
            }
            if matches!(plugin.toolchain, Toolchain::AssemblyScript { .. }) {
                npm_ci(root)?;
            }
            let dir = sdk_dir(root);
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let _ = std::fs::remove_file(&stamp);
            run(&argv, root)?;
            std::fs::write(&stamp, &command_line).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
        }
    }
    if output.is_file() {
        Ok(output)
    } else {
        Err(format!("`{}` succeeded but {} is missing", argv.join(" "), output.display()))
    }
}

/// Whether `output` exists, was made by `command_line` (kept in `stamp`) and is newer than
/// every input.
fn is_fresh(output: &Path, stamp: &Path, command_line: &str, inputs: &[PathBuf]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(output) else { return false };
    if std::fs::read_to_string(stamp).ok().as_deref() != Some(command_line) {
        return false;
    }
    inputs.iter().all(|input| modified(input).is_some_and(|t: SystemTime| t <= built))
}

/// Installs the AssemblyScript packages with `npm ci` into [`npm_dir`], unless the lock file
/// installed there last is the committed one.
fn npm_ci(root: &Path) -> Result<(), String> {
    let source = plugins_dir(root).join("sdk-as");
    let dir = npm_dir(root);
    let lock = std::fs::read(source.join("package-lock.json"))
        .map_err(|e| format!("cannot read {}: {e}", source.join("package-lock.json").display()))?;
    let installed = dir.join("node_modules").join(".installed-package-lock.json");
    if std::fs::read(&installed).ok().as_deref() == Some(lock.as_slice()) {
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), dir.join(file))
            .map_err(|e| format!("cannot copy {} into {}: {e}", source.join(file).display(), dir.display()))?;
    }
    run(&npm_ci_command(), &dir)?;
    std::fs::write(&installed, &lock).map_err(|e| format!("cannot write {}: {e}", installed.display()))
}

/// Runs `argv` in `dir`, keeping its output unless it fails.
fn run(argv: &[String], dir: &Path) -> Result<(), String> {
    let output = Command::new(&argv[0]).args(&argv[1..]).current_dir(dir).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("cannot run `{}`: `{}` not found; {}", argv.join(" "), argv[0], install_hint(&argv[0]))
        } else {
            format!("cannot run `{}`: {e}", argv.join(" "))
        }
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut printed = String::from_utf8_lossy(&output.stderr).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stdout));
    let tail: Vec<&str> = printed.lines().rev().take(30).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "`{}` failed ({}); {}:\n{}",
        argv.join(" "),
        output.status,
        install_hint(&argv[0]),
        tail.join("\n")
    ))
}

/// How to get the tool `program`.
pub fn install_hint(program: &str) -> String {
    match program {
        "node" | "npm" => "the AssemblyScript plugins need Node.js (16 or later) and npm on the PATH: install them \
                           (on Debian: `apt-get install nodejs npm`), then run `cargo xtask setup`"
            .into(),
        "clang" | "clang++" => format!(
            "the C and C++ plugins need Debian's clang for wasm32-wasi: run `cargo xtask setup` as root, or \
             `sudo apt-get install -y --no-install-recommends {}`",
            DEBIAN_PACKAGES.join(" ")
        ),
        _ => "if a target is missing, run `cargo xtask setup`".into(),
    }
}

/// Checks that `node` and `npm` run, returning their versions (`v20.1.0`, `10.2.0`), or what
/// is missing and how to get it.
pub fn check_node() -> Result<(String, String), String> {
    let version = |program: &str| -> Result<String, String> {
        let output = Command::new(program)
            .arg("--version")
            .output()
            .map_err(|e| format!("`{program} --version` failed: {e}; {}", install_hint(program)))?;
        if !output.status.success() {
            return Err(format!("`{program} --version` failed ({}); {}", output.status, install_hint(program)));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    Ok((version("node")?, version("npm")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found_both_ways() {
        for (i, p) in PLUGINS.iter().enumerate() {
            assert_eq!(find(p.guest), Some(p));
            assert_eq!(find(p.name), Some(p));
            assert!(PLUGINS[i + 1..].iter().all(|q| q.guest != p.guest && q.name != p.name), "{p:?}");
        }
        assert_eq!(find("sdk"), None);
        assert_eq!(find("sdk_e2e"), None);
    }

    #[test]
    fn rust_plugins_build_natively_and_land_beside_the_workspace_plugins() {
        let root = Path::new("/w");
        let p = find("sdk-rust-0.1").unwrap();
        assert!(p.native() && p.wasm_only().is_none());
        assert_eq!(p.targets(), [Target::Wasm32, Target::Native]);
        assert_eq!(p.output(root, Target::Wasm32), crate::dir(root, Target::Wasm32).join("sdk_rust_v0_1.wasm"));
        let argv = p.build_command(root, Target::Wasm32);
        assert_eq!(
            &argv[1..],
            [
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-unknown-unknown",
                "--manifest-path",
                "/w/conformance/plugins/sdk-rust-0.1/Cargo.toml",
                "--target-dir",
                "/w/target/guest"
            ]
        );
        assert!(!p.build_command(root, Target::Native).contains(&"--target".to_string()));
    }

    #[test]
    fn other_toolchains_are_wasm_only_and_land_in_the_sdk_dir() {
        let root = Path::new("/w");
        for name in ["sdk-as", "sdk-c", "sdk-cpp"] {
            let p = find(name).unwrap();
            assert!(!p.native() && p.wasm_only().is_some(), "{name}");
            assert_eq!(p.targets(), [Target::Wasm32]);
            assert!(build(root, p, Target::Native).unwrap_err().contains("not built for Native"));
        }
        let asc = find("sdk-as").unwrap().build_command(root, Target::Wasm32);
        assert_eq!(asc[0], "node");
        assert_eq!(asc[1], "/w/target/guest/sdk/npm/node_modules/assemblyscript/bin/asc");
        assert!(asc.windows(2).any(|w| w == ["--use", "abort=abort_proc_exit"]), "{asc:?}");
        assert_eq!(asc.last().unwrap(), "/w/target/guest/sdk/sdk_as.wasm");
        let cpp = find("sdk-cpp").unwrap().build_command(root, Target::Wasm32);
        assert_eq!(cpp[0], "clang++");
        for flag in ["--target=wasm32-wasi", "-mexec-model=reactor", "-fno-exceptions", "-Wl,--export=malloc"] {
            assert!(cpp.contains(&flag.to_string()), "{flag} in {cpp:?}");
        }
        assert_eq!(find("sdk-c").unwrap().build_command(root, Target::Wasm32)[0], "clang");
    }

    #[test]
    fn every_source_named_exists() {
        let root = crate::workspace_root();
        for p in PLUGINS {
            match p.toolchain {
                Toolchain::Cargo { dir } => {
                    let dir = plugins_dir(&root).join(dir);
                    assert!(dir.join("Cargo.toml").is_file() && dir.join("Cargo.lock").is_file(), "{}", dir.display());
                }
                _ => {
                    for input in p.inputs(&root) {
                        assert!(input.is_file(), "{}", input.display());
                    }
                }
            }
        }
    }

    #[test]
    fn freshness_needs_the_same_command_and_newer_output() {
        let dir = std::env::temp_dir().join(format!("guest-plugins-fresh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (input, output, stamp) = (dir.join("in.c"), dir.join("out.wasm"), dir.join("out.wasm.cmd"));
        std::fs::write(&input, "x").unwrap();
        assert!(!is_fresh(&output, &stamp, "cc in.c", std::slice::from_ref(&input)), "no output yet");
        std::fs::write(&output, "wasm").unwrap();
        std::fs::write(&stamp, "cc in.c").unwrap();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options().write(true).open(&input).unwrap().set_modified(old).unwrap();
        assert!(is_fresh(&output, &stamp, "cc in.c", std::slice::from_ref(&input)));
        assert!(!is_fresh(&output, &stamp, "cc -O2 in.c", std::slice::from_ref(&input)), "another command");
        let new = SystemTime::now() + std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&input).unwrap().set_modified(new).unwrap();
        assert!(!is_fresh(&output, &stamp, "cc in.c", std::slice::from_ref(&input)), "an input changed");
        assert!(!is_fresh(&output, &stamp, "cc in.c", &[dir.join("missing.c")]), "a missing input");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
