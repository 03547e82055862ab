//! What the tests need on the machine: Rust targets, the Debian packages the C and C++ guest
//! plugins and the engines built from C or C++ need, and Node.js with npm for the
//! AssemblyScript plugins.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cmd::{describe_exit, Cmd};
use anyhow::{anyhow, bail};

use crate::step;

/// Rust targets guest plugins are built for.
pub const RUST_TARGETS: &[&str] = &["wasm32-unknown-unknown", "wasm32-wasip1"];

/// Debian packages the guest plugins need: clang, lld, wasi-libc and libc++ for wasm32, for the
/// C and C++ guest plugins (`guest_plugins::sdk`).
pub const GUEST_PACKAGES: &[&str] = guest_plugins::sdk::DEBIAN_PACKAGES;

/// Debian packages the WAMR engine needs: `engines/wamr` (through `wamrx-sys`) is built from C
/// with CMake, and its bindings are made by bindgen, which loads libclang and needs clang's own
/// headers (without `libclang-common-14-dev` it fails on `stdbool.h`). Nothing is downloaded
/// while building. gcc is assumed (the Null VM's shim needs it too).
pub const WAMR_PACKAGES: &[&str] = &["cmake", "libclang1-14", "libclang-common-14-dev"];

/// Debian packages the V8 engine needs: the C++ compiler for its shim, and the run-time
/// libraries of libnode108 (its `Depends` less the `node-*` JavaScript packages, which V8 does
/// not need).
pub const V8_PACKAGES: &[&str] =
    &["g++", "libc-ares2", "libuv1", "libicu72", "libnghttp2-14", "libbrotli1", "libssl3", "zlib1g"];

/// Debian packages the benchmarks' instruction-count guard needs (`cargo xtask bench --check`,
/// run by `cargo xtask test`).
pub const BENCH_PACKAGES: &[&str] = &["valgrind"];

/// The packages unpacked (not installed) for the V8 engine: V8 10.2 as a shared library, and its
/// headers. `apt-get install libnode108` is refused beside a `nodejs` package from elsewhere, and
/// nothing but the V8 engine's build uses them, so they are unpacked into a folder of the
/// build's.
pub const LIBNODE_PACKAGES: &[&str] = &["libnode108", "libnode-dev"];

/// `cargo xtask setup`: installs what is missing, printing each step.
pub fn run(root: &Path) -> anyhow::Result<()> {
    ensure_rust_targets(root, RUST_TARGETS)?;
    ensure_debian_packages(&[GUEST_PACKAGES, WAMR_PACKAGES, V8_PACKAGES, BENCH_PACKAGES].concat())?;
    ensure_libnode(&libnode_root(root))?;
    ensure_node()
}

/// Where libnode is unpacked: `LIBNODE_ROOT` if set, else `target/libnode` in
/// the workspace (where `engines/v8/build.rs` looks by default).
pub fn libnode_root(root: &Path) -> PathBuf {
    match std::env::var_os("LIBNODE_ROOT") {
        Some(dir) => PathBuf::from(dir),
        None => root.join("target").join("libnode"),
    }
}

/// What an unpacked libnode must have: V8's headers and the library.
pub fn libnode_files(dir: &Path) -> [PathBuf; 3] {
    [
        dir.join("usr/include/node/v8.h"),
        dir.join("usr/include/node/v8-version.h"),
        dir.join("usr/lib/x86_64-linux-gnu/libnode.so.108"),
    ]
}

/// The V8 version `v8-version.h` declares, as (major, minor).
pub fn v8_version(header: &str) -> Option<(u32, u32)> {
    let num = |name: &str| {
        header.lines().find_map(|l| {
            l.strip_prefix("#define ")?
                .strip_prefix(name)?
                .trim()
                .parse::<u32>()
                .ok()
        })
    };
    Some((num("V8_MAJOR_VERSION")?, num("V8_MINOR_VERSION")?))
}

/// Makes sure libnode (V8 10.2) is unpacked in `dir`: if not, fetches
/// [`LIBNODE_PACKAGES`] with `apt-get download` and unpacks them there with
/// `dpkg -x`; then checks the version and that the library finds every
/// run-time library it needs (`ldd`).
pub fn ensure_libnode(dir: &Path) -> anyhow::Result<()> {
    step(format_args!("setup: checking libnode (V8 10.2) in {}", dir.display()));
    let [_, version_header, library] = libnode_files(dir);
    if libnode_files(dir).iter().all(|f| f.is_file()) {
        step("setup: libnode already unpacked");
    } else {
        let debs = dir.with_file_name(format!(
            "{}-debs",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("libnode")
        ));
        let _ = std::fs::remove_dir_all(&debs);
        std::fs::create_dir_all(&debs)
            .and_then(|()| std::fs::create_dir_all(dir))
            .map_err(|e| anyhow!("cannot create {} or {}: {e}", debs.display(), dir.display()))?;
        // apt-get downloads as the user `_apt` where it can write the folder (otherwise it
        // warns and downloads as root).
        let _ = std::process::Command::new("chown")
            .arg("_apt")
            .arg(&debs)
            .stderr(std::process::Stdio::null())
            .status();
        if is_root() && !APT_UPDATED.load(Ordering::Relaxed) {
            apt_get_update().run("`apt-get update`")?;
            APT_UPDATED.store(true, Ordering::Relaxed);
        }
        apt_get_download(LIBNODE_PACKAGES)
            .current_dir(&debs)
            .run("downloading libnode (`apt-get download`)")?;
        let mut unpacked = 0;
        let entries = std::fs::read_dir(&debs)
            .map_err(|e| anyhow!("cannot read {}: {e}", debs.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "deb") {
                Cmd::new("dpkg")
                    .arg("-x")
                    .arg(path.display().to_string())
                    .arg(dir.display().to_string())
                    .run("unpacking libnode (`dpkg -x`)")?;
                unpacked += 1;
            }
        }
        let _ = std::fs::remove_dir_all(&debs);
        if unpacked != LIBNODE_PACKAGES.len() {
            bail!(
                "`apt-get download {}` gave {unpacked} packages, not {}",
                LIBNODE_PACKAGES.join(" "),
                LIBNODE_PACKAGES.len()
            );
        }
    }
    let header = std::fs::read_to_string(&version_header).unwrap_or_default();
    match v8_version(&header) {
        Some((10, 2)) => {}
        other => {
            bail!(
                "{} declares V8 {other:?}, not 10.2 (the V8 engine's shim is written for V8 10.2 of libnode108); remove {} and run setup again",
                version_header.display(),
                dir.display()
            )
        }
    }
    let ldd = Cmd::new("ldd").arg(library.display().to_string());
    let output = ldd.output().map_err(|e| ldd.spawn_error("checking libnode's libraries", &e))?;
    let missing = missing_libraries(&String::from_utf8_lossy(&output.stdout));
    if !missing.is_empty() {
        bail!(
            "libnode.so.108 cannot find {}: install the Debian packages {}",
            missing.join(", "),
            V8_PACKAGES.join(" ")
        );
    }
    step("setup: libnode (V8 10.2) ready");
    Ok(())
}

/// `apt-get download <packages>`: fetches the candidate versions' `.deb` files
/// into the current directory, without installing them.
pub fn apt_get_download(packages: &[&str]) -> Cmd {
    Cmd::new("apt-get")
        .arg("download")
        .args(packages.iter().copied())
        .env("DEBIAN_FRONTEND", "noninteractive")
}

/// The libraries `ldd` output says are "not found".
pub fn missing_libraries(ldd_output: &str) -> Vec<String> {
    ldd_output
        .lines()
        .filter(|line| line.contains("not found"))
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Checks that Node.js and npm run (the AssemblyScript plugins are built with the npm packages
/// of a lock file); says how to get them otherwise. Installs nothing: the packages themselves
/// are installed by `npm ci` when the plugins are built.
pub fn ensure_node() -> anyhow::Result<()> {
    step("setup: checking Node.js and npm");
    let (node, npm) = guest_plugins::sdk::check_node().map_err(anyhow::Error::msg)?;
    step(format_args!("setup: node {node}, npm {npm}"));
    Ok(())
}

/// Makes sure the active toolchain (the one `rust-toolchain.toml` in `root`
/// pins) has `targets`, adding the missing ones with rustup.
pub fn ensure_rust_targets(root: &Path, targets: &[&str]) -> anyhow::Result<()> {
    step(format_args!(
        "setup: checking Rust targets {}",
        targets.join(", ")
    ));
    let list = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root);
    let output = match list.output() {
        Ok(output) => output,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return check_sysroot_targets(root, targets)
        }
        Err(error) => return Err(list.spawn_error("listing installed Rust targets", &error)),
    };
    if !output.status.success() {
        bail!(
            "`{list}` failed ({}): {}",
            describe_exit(output.status.code()),
            first_line(&String::from_utf8_lossy(&output.stderr))
        );
    }
    let missing = missing_targets(&String::from_utf8_lossy(&output.stdout), targets);
    if missing.is_empty() {
        step("setup: Rust targets already installed");
        return Ok(());
    }
    rustup_target_add(&missing)
        .current_dir(root)
        .run("installing Rust targets")
}

/// `rustup target add` for `targets`.
pub fn rustup_target_add(targets: &[&str]) -> Cmd {
    Cmd::new("rustup")
        .args(["target", "add"])
        .args(targets.iter().copied())
}

/// The targets of `wanted` absent from `rustup target list --installed` output.
pub fn missing_targets<'a>(installed: &str, wanted: &[&'a str]) -> Vec<&'a str> {
    let installed: Vec<&str> = installed.lines().map(str::trim).collect();
    wanted
        .iter()
        .copied()
        .filter(|target| !installed.contains(target))
        .collect()
}

/// Without rustup: looks for each target's standard library in the sysroot.
fn check_sysroot_targets(root: &Path, targets: &[&str]) -> anyhow::Result<()> {
    let rustc = Cmd::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string()))
        .args(["--print", "sysroot"])
        .current_dir(root);
    let output = rustc
        .output()
        .map_err(|error| rustc.spawn_error("finding the Rust sysroot", &error))?;
    if !output.status.success() {
        bail!("`{rustc}` failed ({})", describe_exit(output.status.code()));
    }
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|target| {
            !Path::new(&sysroot)
                .join("lib")
                .join("rustlib")
                .join(target)
                .is_dir()
        })
        .collect();
    if missing.is_empty() {
        step(format_args!(
            "setup: rustup not found; Rust targets present in {sysroot}"
        ));
        return Ok(());
    }
    Err(anyhow!(
        "rustup not found and Rust targets {} are missing from {sysroot}; run `{}` (or install the targets' standard library with your Rust distribution)",
        missing.join(", "),
        rustup_target_add(&missing)
    ))
}

/// Set once `apt-get update` ran in this process.
static APT_UPDATED: AtomicBool = AtomicBool::new(false);

/// What [`ensure_debian_packages`] does about missing packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AptPlan {
    /// Everything is installed.
    Nothing,
    /// Root: run these commands in order.
    Run(Vec<Cmd>),
    /// Not root: fail, asking the user to run this command.
    AskUser(String),
}

/// `apt-get update`.
pub fn apt_get_update() -> Cmd {
    Cmd::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
}

/// `apt-get install -y --no-install-recommends <packages>`, non-interactive.
pub fn apt_get_install(packages: &[&str]) -> Cmd {
    Cmd::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages.iter().copied())
        .env("DEBIAN_FRONTEND", "noninteractive")
}

/// The plan for `missing` packages, as root or not, with or without an earlier `apt-get update`.
pub fn apt_plan(missing: &[&str], is_root: bool, updated: bool) -> AptPlan {
    if missing.is_empty() {
        return AptPlan::Nothing;
    }
    if !is_root {
        let mut install =
            Cmd::new("sudo")
                .arg("apt-get")
                .args(["install", "-y", "--no-install-recommends"]);
        install = install.args(missing.iter().copied());
        return AptPlan::AskUser(install.to_string());
    }
    let mut commands = Vec::new();
    if !updated {
        commands.push(apt_get_update());
    }
    commands.push(apt_get_install(missing));
    AptPlan::Run(commands)
}

/// Whether `dpkg -s` output says the package is installed.
pub fn dpkg_says_installed(dpkg_status_output: &str) -> bool {
    dpkg_status_output.lines().any(|line| {
        line.strip_prefix("Status:")
            .is_some_and(|status| status.trim() == "install ok installed")
    })
}

/// Makes sure Debian `packages` are installed: checks each with `dpkg -s`;
/// as root installs the missing ones (`apt-get update` once per run first);
/// otherwise fails with the exact `sudo apt-get install ...` to run.
pub fn ensure_debian_packages(packages: &[&str]) -> anyhow::Result<()> {
    step(format_args!(
        "setup: checking Debian packages {}",
        packages.join(", ")
    ));
    let missing = missing_debian_packages(packages)?;
    match apt_plan(&missing, is_root(), APT_UPDATED.load(Ordering::Relaxed)) {
        AptPlan::Nothing => {
            step("setup: Debian packages already installed");
            Ok(())
        }
        AptPlan::AskUser(command) => Err(anyhow!(
            "Debian packages {} are missing and xtask is not root; run: {command}",
            missing.join(", ")
        )),
        AptPlan::Run(commands) => {
            for command in commands {
                let is_update = command.argv().get(1) == Some(&"update");
                command.run(&format!("`{}`", command.argv().join(" ")))?;
                if is_update {
                    APT_UPDATED.store(true, Ordering::Relaxed);
                }
            }
            let still_missing = missing_debian_packages(packages)?;
            if still_missing.is_empty() {
                Ok(())
            } else {
                Err(anyhow!(
                    "Debian packages {} are still missing after apt-get install",
                    still_missing.join(", ")
                ))
            }
        }
    }
}

fn missing_debian_packages<'a>(packages: &[&'a str]) -> anyhow::Result<Vec<&'a str>> {
    let mut missing = Vec::new();
    for &package in packages {
        let dpkg = Cmd::new("dpkg").args(["-s", package]);
        let output = match dpkg.output() {
            Ok(output) => output,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                bail!(
                    "cannot check Debian packages {}: `dpkg` not found (not a Debian-based system?); install them by hand",
                    packages.join(", ")
                )
            }
            Err(error) => return Err(dpkg.spawn_error("checking Debian packages", &error)),
        };
        if !(output.status.success()
            && dpkg_says_installed(&String::from_utf8_lossy(&output.stdout)))
        {
            missing.push(package);
        }
    }
    Ok(missing)
}

/// Whether this process runs as root (`id -u` prints 0).
fn is_root() -> bool {
    Cmd::new("id")
        .arg("-u")
        .output()
        .map(|output| {
            output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "0"
        })
        .unwrap_or(false)
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_missing_targets() {
        let installed = "wasm32-unknown-unknown\nx86_64-unknown-linux-gnu\n";
        assert_eq!(missing_targets(installed, RUST_TARGETS), ["wasm32-wasip1"]);
        assert_eq!(missing_targets("", RUST_TARGETS), RUST_TARGETS);
        assert!(
            missing_targets("wasm32-wasip1\nwasm32-unknown-unknown\n", RUST_TARGETS).is_empty()
        );
        // A prefix is not the target.
        assert_eq!(
            missing_targets("wasm32-wasip1-threads\n", &["wasm32-wasip1"]),
            ["wasm32-wasip1"]
        );
    }

    #[test]
    fn rustup_command_names_the_targets() {
        assert_eq!(
            rustup_target_add(&["wasm32-wasip1"]).to_string(),
            "rustup target add wasm32-wasip1"
        );
    }

    #[test]
    fn root_updates_once_then_installs() {
        let AptPlan::Run(commands) = apt_plan(&["libfoo-dev", "cmake"], true, false) else {
            panic!("expected commands to run");
        };
        let shown: Vec<String> = commands.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "DEBIAN_FRONTEND=noninteractive apt-get update",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libfoo-dev cmake",
            ]
        );
        assert_eq!(
            commands[1].argv(),
            [
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "libfoo-dev",
                "cmake"
            ]
        );

        let AptPlan::Run(commands) = apt_plan(&["cmake"], true, true) else {
            panic!("expected commands to run");
        };
        assert_eq!(commands, [apt_get_install(&["cmake"])]);
    }

    #[test]
    fn non_root_is_told_the_sudo_command() {
        assert_eq!(
            apt_plan(&["libfoo-dev", "cmake"], false, false),
            AptPlan::AskUser(
                "sudo apt-get install -y --no-install-recommends libfoo-dev cmake".to_string()
            )
        );
    }

    #[test]
    fn nothing_missing_means_nothing_to_do() {
        assert_eq!(apt_plan(&[], true, false), AptPlan::Nothing);
        assert_eq!(apt_plan(&[], false, false), AptPlan::Nothing);
    }

    #[test]
    fn reads_dpkg_status() {
        let installed = "Package: cmake\nStatus: install ok installed\nPriority: optional\n";
        assert!(dpkg_says_installed(installed));
        let removed = "Package: cmake\nStatus: deinstall ok config-files\n";
        assert!(!dpkg_says_installed(removed));
        assert!(!dpkg_says_installed(""));
    }

    #[test]
    fn reads_the_v8_version() {
        let header = "#define V8_MAJOR_VERSION 10\n#define V8_MINOR_VERSION 2\n#define V8_BUILD_NUMBER 154\n";
        assert_eq!(v8_version(header), Some((10, 2)));
        assert_eq!(v8_version("#define V8_MAJOR_VERSION 11\n"), None);
    }

    #[test]
    fn finds_libraries_ldd_cannot() {
        let ldd = "\tlibuv.so.1 => /lib/x86_64-linux-gnu/libuv.so.1 (0x1)\n\tlibcares.so.2 => not found\n";
        assert_eq!(missing_libraries(ldd), ["libcares.so.2"]);
        assert!(missing_libraries("\tlibc.so.6 => /lib/libc.so.6 (0x2)\n").is_empty());
    }

    #[test]
    fn downloads_libnode_without_installing() {
        assert_eq!(
            apt_get_download(LIBNODE_PACKAGES).argv(),
            ["apt-get", "download", "libnode108", "libnode-dev"]
        );
    }
}
