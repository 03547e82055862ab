//! Project automation, run as `cargo xtask <subcommand>` (an alias in
//! `.cargo/config.toml`). Rust instead of shell scripts; no engine crate, so that it builds
//! quickly on a fresh machine.
//!
//! - [`cli`]: the subcommands and their arguments (`clap`).
//! - [`cmd`]: running a child process, printing it first, with errors that name it.
//! - [`setup`]: Rust targets and Debian packages the tests need.
//! - [`fuzz`]: the fuzz targets, each for a bounded time.
//! - [`report`]: the benchmark report from the benches' manifests and criterion's estimates.
//! - [`counts`]: the instruction-count guard (`bench --check`), under valgrind's callgrind.
//! - building the guest plugins is the `guest-plugins` crate's, shared with the tests.
//!
//! Every failure is an [`anyhow::Error`] whose chain says what failed and why; xtask leaves
//! with a failed child's own exit code ([`ChildFailed`]), 1 for any other failure, and 2 for
//! a bad command line (clap's usage errors).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub mod cli;
pub mod cmd;
pub mod counts;
pub mod fuzz;
pub mod report;
pub mod setup;

use cli::Command;
use cmd::Cmd;

/// A child process that ran and failed: xtask leaves with its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildFailed {
    /// What failed and how, for example `cargo test failed (exit 101)`.
    pub message: String,
    /// The child's exit code, `None` when a signal killed it.
    pub code: Option<i32>,
}

impl ChildFailed {
    /// The exit code xtask leaves with: the child's, or 1 if it had none (or, oddly, 0).
    pub fn exit_code(&self) -> i32 {
        match self.code {
            Some(0) | None => 1,
            Some(code) => code,
        }
    }
}

impl fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ChildFailed {}

/// The exit code xtask leaves with after `error`: that of a failed child anywhere in its
/// chain, else 1.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ChildFailed>())
        .map_or(1, ChildFailed::exit_code)
}

/// The root of the main workspace: the parent of xtask's own manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Prints one progress line (to stderr, so stdout carries only results).
pub fn step(message: impl fmt::Display) {
    eprintln!("xtask: {message}");
}

/// Runs a parsed subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    let root = workspace_root();
    match command {
        Command::Setup => setup::run(&root),
        Command::BuildPlugins => build_plugins(&root),
        Command::Test => {
            build_plugins(&root)?;
            cargo(&root)
                .args(["test", "--workspace", "--all-targets"])
                .run("cargo test")?;
            fuzz::run(&root, &[], CI_FUZZ_SECONDS)?;
            // Set-up installs valgrind; without it (a machine set up by hand) the guard is
            // skipped, and says so.
            if counts::valgrind_present() {
                counts::check(&root, &[])
            } else {
                step("counts: valgrind is not installed; the instruction-count check (cargo xtask bench --check) is skipped");
                Ok(())
            }
        }
        Command::Conformance(args) => {
            build_plugins(&root)?;
            conformance_command(&root, &args.engines())
                .args(args.pass_on())
                .run("the conformance suite")
        }
        Command::Bench(args) => {
            build_plugins(&root)?;
            if args.check {
                counts::check(&root, &args.engines())
            } else if args.record_counts {
                counts::record(&root, &args.engines())
            } else {
                bench(&root, &args.engines(), args.quick)
            }
        }
        Command::Fuzz(args) => fuzz::run(&root, &args.target, args.seconds),
    }
}

/// How long `cargo xtask test` runs each fuzz target: a short bounded run that CI can afford.
pub const CI_FUZZ_SECONDS: u64 = 30;

/// Runs setup, then builds the guest plugins for every target and prints where they are.
fn build_plugins(root: &Path) -> anyhow::Result<()> {
    setup::run(root)?;
    for target in guest_plugins::Target::ALL {
        let argv = guest_plugins::build_command(root, target);
        step(format_args!("$ {}", argv.join(" ")));
        guest_plugins::build(root, target).map_err(anyhow::Error::msg)?;
        let files = guest_plugins::list(root, target).map_err(anyhow::Error::msg)?;
        println!(
            "guest plugins for {target:?} ({}):",
            guest_plugins::dir(root, target).display()
        );
        for (path, size) in files {
            println!("  {} ({size} bytes)", path.display());
        }
    }
    build_sdk_plugins(root)
}

/// Builds the plugins of other SDKs and toolchains (`guest_plugins::sdk`) for each of their
/// targets and prints where they are, with how long each took.
fn build_sdk_plugins(root: &Path) -> anyhow::Result<()> {
    println!("guest plugins of other SDKs and toolchains:");
    for plugin in guest_plugins::sdk::PLUGINS {
        for &target in plugin.targets() {
            step(format_args!("$ {}", plugin.build_command(root, target).join(" ")));
            let started = std::time::Instant::now();
            let path = guest_plugins::sdk::build(root, plugin, target).map_err(anyhow::Error::msg)?;
            println!(
                "  {} {target:?}: {} ({:.1} s)",
                plugin.guest,
                path.display(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// `cargo` as cargo itself names it (`$CARGO` under `cargo run`), run from `root`.
pub fn cargo(root: &Path) -> Cmd {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    Cmd::new(program).current_dir(root)
}

/// The package of the conformance suite.
pub const CONFORMANCE_PACKAGE: &str = "proxy-wasm-conformance";

/// The crate that declares the engines' Cargo features (and the only one that does).
pub const HARNESS_PACKAGE: &str = "proxy-wasm-harness";

/// `--features` building in `engines`: each is a feature of the harness crate.
pub(crate) fn engine_features(engines: &[String]) -> String {
    engines
        .iter()
        .map(|engine| format!("{HARNESS_PACKAGE}/{engine}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `cargo run` of the conformance suite's binary on `engines` (each built in through its Cargo
/// feature of the harness; none named means every engine the default features build).
pub fn conformance_command(root: &Path, engines: &[String]) -> Cmd {
    let mut command = cargo(root).args(["run", "--quiet", "-p", CONFORMANCE_PACKAGE]);
    if !engines.is_empty() {
        command = command.args(["--features", &engine_features(engines)]);
    }
    command = command.arg("--");
    for engine in engines {
        command = command.args(["--engine", engine]);
    }
    command
}

/// The package of the benchmarks.
pub const BENCH_PACKAGE: &str = "proxy-wasm-benches";

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// `cargo bench` of every bench target of the benches crate on `engines` (each built in through
/// its Cargo feature of the harness; none named means every engine the default features build). The bench
/// binaries write their manifests into `out`, criterion its estimates into `criterion`;
/// `quick` shortens criterion's timings (see `benches/src/run.rs`).
pub fn bench_command(
    root: &Path,
    engines: &[String],
    quick: bool,
    out: &Path,
    criterion: &Path,
) -> Cmd {
    let mut command = cargo(root).args(["bench", "-p", BENCH_PACKAGE]);
    if !engines.is_empty() {
        command = command.args(["--features", &engine_features(engines)]);
    }
    // `--bench '*'` picks the bench targets only: the library's libtest harness would reject
    // criterion's options.
    command = command
        .args(["--bench", "*"])
        .env("PWBENCH_OUT", out.to_string_lossy())
        .env("CRITERION_HOME", criterion.to_string_lossy());
    if !engines.is_empty() {
        command = command.env("PWBENCH_ENGINES", engines.join(","));
    }
    if quick {
        command = command.env("PWBENCH_QUICK", "1");
    }
    command
}

/// Runs the benchmarks, then writes `target/bench-report/report.md` and `report.svg` and prints
/// the report.
fn bench(root: &Path, engines: &[String], quick: bool) -> anyhow::Result<()> {
    let target = target_dir(root);
    let out = target.join("bench-report");
    let criterion = target.join("criterion");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // Manifests of an earlier run would mix into this report.
    if let Ok(entries) = std::fs::read_dir(&out) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("manifest-") || name.starts_with("report.") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    // Estimates written before this moment are from an earlier run (a second of slack for
    // file systems that store coarse times).
    let started = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    bench_command(root, engines, quick, &out, &criterion).run("cargo bench")?;
    let manifest = report::read_manifests(&out)?;
    let estimates = report::read_estimates(&criterion, started);
    let report = report::Report::new(&manifest, &estimates);
    let header = format!(
        "{} run of `cargo xtask bench{}{}` on {} ({} CPUs).",
        if quick { "A quick" } else { "A full" },
        engines
            .iter()
            .map(|e| format!(" --engine {e}"))
            .collect::<String>(),
        if quick { " --quick" } else { "" },
        utc_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let markdown = report.markdown(&header);
    let (md, svg) = (out.join("report.md"), out.join("report.svg"));
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write(&md, &markdown)?;
    write(&svg, &report.svg())?;
    println!("{markdown}");
    step(format_args!("wrote {} and {}", md.display(), svg.display()));
    let missing: Vec<&str> = report
        .verdicts
        .iter()
        .filter(|v| v.value.is_none())
        .map(|v| v.goal.text)
        .collect();
    if !missing.is_empty() && engines.is_empty() {
        step(format_args!(
            "not measured in this run: {}",
            missing.join("; ")
        ));
    }
    Ok(())
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("xtask").join("Cargo.toml").is_file());
    }

    #[test]
    fn child_errors_keep_the_childs_exit_code() {
        let child = |code| {
            anyhow::Error::new(ChildFailed {
                message: "cargo test failed".into(),
                code,
            })
        };
        assert_eq!(exit_code(&child(Some(101))), 101);
        assert_eq!(
            exit_code(&child(Some(101)).context("the conformance suite")),
            101,
            "found anywhere in the chain"
        );
        assert_eq!(exit_code(&child(None)), 1);
        assert_eq!(exit_code(&child(Some(0))), 1);
        assert_eq!(exit_code(&anyhow::anyhow!("cannot write x")), 1);
    }

    #[test]
    fn conformance_builds_in_the_engines_it_names() {
        let root = Path::new("/w");
        assert_eq!(
            &conformance_command(root, &[]).argv()[1..],
            ["run", "--quiet", "-p", "proxy-wasm-conformance", "--"]
        );
        let two = ["wasmtime".to_string(), "wasmer-singlepass".to_string()];
        assert_eq!(
            &conformance_command(root, &two).argv()[1..],
            [
                "run",
                "--quiet",
                "-p",
                "proxy-wasm-conformance",
                "--features",
                "proxy-wasm-harness/wasmtime,proxy-wasm-harness/wasmer-singlepass",
                "--",
                "--engine",
                "wasmtime",
                "--engine",
                "wasmer-singlepass"
            ]
        );
    }

    #[test]
    fn bench_builds_in_the_engines_it_names_and_passes_the_settings() {
        let (root, out, criterion) = (
            Path::new("/w"),
            Path::new("/w/target/bench-report"),
            Path::new("/w/target/criterion"),
        );
        let all = bench_command(root, &[], false, out, criterion);
        assert_eq!(
            &all.argv()[1..],
            ["bench", "-p", "proxy-wasm-benches", "--bench", "*"]
        );
        let shown = all.to_string();
        assert!(
            shown.contains("PWBENCH_OUT=/w/target/bench-report"),
            "{shown}"
        );
        assert!(
            shown.contains("CRITERION_HOME=/w/target/criterion"),
            "{shown}"
        );
        assert!(
            !shown.contains("PWBENCH_QUICK") && !shown.contains("PWBENCH_ENGINES"),
            "{shown}"
        );
        let two = ["wasmtime".to_string(), "null".to_string()];
        let some = bench_command(root, &two, true, out, criterion);
        assert_eq!(
            &some.argv()[1..],
            [
                "bench",
                "-p",
                "proxy-wasm-benches",
                "--features",
                "proxy-wasm-harness/wasmtime,proxy-wasm-harness/null",
                "--bench",
                "*"
            ]
        );
        let shown = some.to_string();
        assert!(shown.contains("PWBENCH_ENGINES=wasmtime,null"), "{shown}");
        assert!(shown.contains("PWBENCH_QUICK=1"), "{shown}");
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }
}
