//! What the tests need on the machine: Rust targets, the Debian packages the C and C++ guest
//! plugins build with, and Node.js with npm for the AssemblyScript ones.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cmd::{describe_exit, Cmd};
use anyhow::{anyhow, bail};

use crate::step;

/// Rust targets guest plugins are built for.
pub const RUST_TARGETS: &[&str] = &["wasm32-unknown-unknown", "wasm32-wasip1"];

/// Debian packages the tests need: clang, lld, wasi-libc and libc++ for wasm32, for the C and
/// C++ guest plugins (`guest_plugins::sdk`).
pub const DEBIAN_PACKAGES: &[&str] = guest_plugins::sdk::DEBIAN_PACKAGES;

/// `cargo xtask setup`: installs what is missing, printing each step.
pub fn run(root: &Path) -> anyhow::Result<()> {
    ensure_rust_targets(root, RUST_TARGETS)?;
    if !DEBIAN_PACKAGES.is_empty() {
        ensure_debian_packages(DEBIAN_PACKAGES)?;
    }
    ensure_node()
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
}
