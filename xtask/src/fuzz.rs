//! `cargo xtask fuzz`: each fuzz target of `fuzz/` (cargo fuzz, libFuzzer) for a bounded time.
//!
//! cargo fuzz builds with nightly-only compiler flags (`-Zsanitizer=address`); the pinned stable
//! compiler accepts them with `RUSTC_BOOTSTRAP=1`, set here for the fuzz build alone. Its build
//! goes to `<target>/fuzz`, apart from the workspace's (other flags); the corpus grows in
//! `fuzz/corpus/<target>` and a crash lands in `fuzz/artifacts/<target>/` (both ignored by git).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context as _};

use crate::cmd::Cmd;
use crate::{step, target_dir};

/// The fuzz targets, as `fuzz/Cargo.toml` declares them (a test keeps the two in step).
pub const TARGETS: &[&str] = &["header_map", "hostcalls", "module_load"];

/// The cargo-fuzz release setup installs when `cargo fuzz` is missing.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The fuzz workspace.
pub fn fuzz_dir(root: &Path) -> PathBuf {
    root.join("fuzz")
}

/// Makes sure `cargo fuzz` runs, installing cargo-fuzz from crates.io (`cargo install
/// --locked`) when it does not.
pub fn ensure_cargo_fuzz(root: &Path) -> anyhow::Result<()> {
    let probe = crate::cargo(root).args(["fuzz", "--version"]);
    match probe.output() {
        Ok(out) if out.status.success() => {
            step(format_args!("setup: {}", String::from_utf8_lossy(&out.stdout).trim()));
            Ok(())
        }
        _ => crate::cargo(root)
            .args(["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION, "--locked"])
            .run("installing cargo-fuzz"),
    }
}

/// `cargo fuzz run` of `target` for `seconds`, optimised, in the fuzz build's own target dir.
pub fn run_command(root: &Path, target: &str, seconds: u64) -> Cmd {
    crate::cargo(root)
        .current_dir(fuzz_dir(root))
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", target_dir(root).join("fuzz").display().to_string())
        .args(["fuzz", "run", "-O", target, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .arg("-max_len=4096")
        .arg("-print_final_stats=1")
}

/// What one run did, from libFuzzer's closing lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStats {
    /// Inputs executed.
    pub runs: u64,
    /// Seconds it ran, as libFuzzer counts them.
    pub seconds: u64,
}

/// Reads libFuzzer's `Done N runs in S second(s)` line.
pub fn parse_done(log: &str) -> Option<RunStats> {
    let line = log.lines().rev().find(|l| l.starts_with("Done "))?;
    let mut words = line.split_whitespace();
    let runs = words.nth(1)?.parse().ok()?;
    let seconds = words.nth(2)?.parse().ok()?;
    Some(RunStats { runs, seconds })
}

/// Runs each of `targets` (all when empty) for `seconds`; a crash fails with the artifact and
/// libFuzzer's last lines.
pub fn run(root: &Path, targets: &[String], seconds: u64) -> anyhow::Result<()> {
    ensure_cargo_fuzz(root)?;
    let targets: Vec<&str> = if targets.is_empty() { TARGETS.to_vec() } else { targets.iter().map(String::as_str).collect() };
    let logs = target_dir(root).join("fuzz").join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let mut summary = Vec::new();
    for target in targets {
        let cmd = run_command(root, target, seconds);
        let log_path = logs.join(format!("{target}.log"));
        step(format_args!("$ {cmd} 2> {}", log_path.display()));
        let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
        let status = cmd
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .status()
            .map_err(|e| cmd.spawn_error("cargo fuzz", &e))?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
            let artifact = text.lines().find(|l| l.contains("Test unit written to")).unwrap_or("no artifact written");
            bail!(
                "fuzz target `{target}` failed ({}): {artifact}; the full log is {}; reproduce with `cargo fuzz run -O {target} <artifact>` in fuzz/ (RUSTC_BOOTSTRAP=1) and make it a regression test\n{}",
                crate::cmd::describe_exit(status.code()),
                log_path.display(),
                tail.join("\n")
            );
        }
        let stats = parse_done(&text).with_context(|| format!("fuzz target `{target}`: no `Done` line in {}", log_path.display()))?;
        println!("fuzz {target}: {} runs in {} s, no crash", stats.runs, stats.seconds);
        summary.push((target, stats));
    }
    let total: u64 = summary.iter().map(|(_, s)| s.runs).sum();
    println!("fuzz: {} targets, {total} runs, no crash", summary.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_those_the_fuzz_manifest_declares() {
        let manifest = std::fs::read_to_string(fuzz_dir(&crate::workspace_root()).join("Cargo.toml")).unwrap();
        let declared: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|bin| bin.lines().find_map(|l| l.trim().strip_prefix("name = ")))
            .map(|n| n.trim_matches('"'))
            .collect();
        assert_eq!(declared, TARGETS);
        for target in TARGETS {
            assert!(fuzz_dir(&crate::workspace_root()).join(format!("fuzz_targets/{target}.rs")).is_file(), "{target}");
        }
    }

    #[test]
    fn reads_libfuzzers_closing_line() {
        let log = "#78090\tDONE   cov: 2594 ft: 3459\nstat::number_of_executed_units: 78090\nDone 78090 runs in 21 second(s)\n";
        assert_eq!(parse_done(log), Some(RunStats { runs: 78090, seconds: 21 }));
        assert_eq!(parse_done("==1==ERROR: AddressSanitizer"), None);
    }

    #[test]
    fn the_run_command_bounds_the_time_and_allows_the_sanitizer_flags() {
        let cmd = run_command(Path::new("/w"), "hostcalls", 30).to_string();
        assert!(cmd.starts_with("RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="), "{cmd}");
        assert!(cmd.ends_with("fuzz run -O hostcalls -- -max_total_time=30 -max_len=4096 -print_final_stats=1"), "{cmd}");
    }
}
