//! Project automation, run as `cargo xtask <subcommand>` (an alias in
//! `.cargo/config.toml`). Rust instead of shell scripts, standard library only.
//!
//! - [`cli`]: the subcommands and their arguments.
//! - [`cmd`]: running a child process, printing it first, with errors that name it.
//! - [`setup`]: Rust targets and Debian packages the tests need.
//! - building the guest plugins is the `guest-plugins` crate's, shared with the tests.
//!
//! Every failure is an [`Error`]: one line naming what failed and why, and the
//! exit code to leave with (2 for bad usage, a child's own code when it failed).

use std::fmt;
use std::path::{Path, PathBuf};

pub mod cli;
pub mod cmd;
pub mod setup;

use cli::Command;
use cmd::Cmd;

/// A failed xtask step: a one-line message and the process exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    exit_code: i32,
    show_usage: bool,
}

impl Error {
    /// A step failed for a reason of its own (exit code 1).
    pub fn failed(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            exit_code: 1,
            show_usage: false,
        }
    }

    /// The command line was wrong (exit code 2, usage printed).
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            exit_code: 2,
            show_usage: true,
        }
    }

    /// A child process failed: leave with its exit code, or 1 if it had none.
    pub fn child(message: impl Into<String>, exit_code: Option<i32>) -> Error {
        let exit_code = match exit_code {
            Some(0) | None => 1,
            Some(code) => code,
        };
        Error {
            message: message.into(),
            exit_code,
            show_usage: false,
        }
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The exit code xtask leaves with.
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    /// Whether the usage text should follow the message.
    pub fn show_usage(&self) -> bool {
        self.show_usage
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The root of the main workspace: the parent of xtask's own manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Prints one progress line (to stderr, so stdout carries only results).
pub fn step(message: impl fmt::Display) {
    eprintln!("xtask: {message}");
}

/// Parses `args` (without the program name) and runs the subcommand.
pub fn run(args: Vec<String>) -> Result<(), Error> {
    let command = cli::parse(args)?;
    let root = workspace_root();
    match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        Command::Setup => setup::run(&root),
        Command::BuildPlugins => build_plugins(&root),
        Command::Test => {
            build_plugins(&root)?;
            cargo(&root)
                .args(["test", "--workspace", "--all-targets"])
                .run("cargo test")
        }
        Command::Conformance { engines, pass_on } => {
            build_plugins(&root)?;
            conformance_command(&root, &engines).args(pass_on).run("the conformance suite")
        }
        Command::Bench { quick } => {
            build_plugins(&root)?;
            bench_command(&root, quick).run("cargo bench")
        }
    }
}

/// Runs setup, then builds the guest plugins for every target and prints where they are.
fn build_plugins(root: &Path) -> Result<(), Error> {
    setup::run(root)?;
    for target in guest_plugins::Target::ALL {
        let argv = guest_plugins::build_command(root, target);
        step(format_args!("$ {}", argv.join(" ")));
        guest_plugins::build(root, target).map_err(Error::failed)?;
        let files = guest_plugins::list(root, target).map_err(Error::failed)?;
        println!("guest plugins for {target:?} ({}):", guest_plugins::dir(root, target).display());
        for (path, size) in files {
            println!("  {} ({size} bytes)", path.display());
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

/// `cargo run` of the conformance suite's binary on `engines` (each built in through its Cargo
/// feature; none named means every engine the default features build).
pub fn conformance_command(root: &Path, engines: &[String]) -> Cmd {
    let mut command = cargo(root).args(["run", "--quiet", "-p", CONFORMANCE_PACKAGE]);
    if !engines.is_empty() {
        command = command.args(["--features", &engines.join(",")]);
    }
    command = command.arg("--");
    for engine in engines {
        command = command.args(["--engine", engine]);
    }
    command
}

/// `cargo bench` for the benches crate; `quick` shortens criterion's timings.
pub fn bench_command(root: &Path, quick: bool) -> Cmd {
    // `--bench '*'` picks the criterion targets only: the library's libtest
    // harness would reject criterion's options.
    let command = cargo(root).args(["bench", "-p", "proxy-wasm-benches", "--bench", "*"]);
    if quick {
        command.args(["--", "--warm-up-time", "1", "--measurement-time", "2"])
    } else {
        command
    }
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
        assert_eq!(
            Error::child("cargo test failed (exit 101)", Some(101)).exit_code(),
            101
        );
        assert_eq!(Error::child("killed", None).exit_code(), 1);
        assert_eq!(Error::child("odd", Some(0)).exit_code(), 1);
        assert_eq!(Error::usage("bad").exit_code(), 2);
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
                "wasmtime,wasmer-singlepass",
                "--",
                "--engine",
                "wasmtime",
                "--engine",
                "wasmer-singlepass"
            ]
        );
    }

    #[test]
    fn quick_bench_passes_criterion_timings() {
        let root = Path::new("/w");
        let quick = bench_command(root, true);
        assert_eq!(
            &quick.argv()[1..],
            [
                "bench",
                "-p",
                "proxy-wasm-benches",
                "--bench",
                "*",
                "--",
                "--warm-up-time",
                "1",
                "--measurement-time",
                "2"
            ]
        );
        let full = bench_command(root, false);
        assert_eq!(
            &full.argv()[1..],
            ["bench", "-p", "proxy-wasm-benches", "--bench", "*"]
        );
    }
}
