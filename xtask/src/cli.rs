//! The subcommands and their arguments, parsed by `clap`: `cargo xtask help` (or `--help`
//! after any subcommand) prints them, and a bad command line is clap's usage error (exit 2).

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};

/// The command line after `cargo xtask`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Project automation: setup, guest plugin builds, tests, the conformance suite and the benchmarks."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Install what the tests need (Rust targets, Debian packages for the C/C++ guests, WAMR and
    /// V8, Debian's libnode unpacked into target/libnode or LIBNODE_ROOT, Node.js check)
    Setup,
    /// Setup, then build the guest plugins in conformance/plugins into
    /// target/guest/wasm32-unknown-unknown/release/ (and wasip1, native)
    BuildPlugins,
    /// Setup, build-plugins, then every test in the workspace (cargo test --workspace
    /// --all-targets), then each fuzz target for 30 seconds
    Test,
    /// Setup, build-plugins, then every conformance case on every engine built in: prints the
    /// case x engine matrix, writes target/conformance/report.{md,json}, fails on any failing
    /// case
    Conformance(ConformanceArgs),
    /// Setup, build-plugins, then the criterion benchmarks: each workload beside its baseline,
    /// and memory per worker VM; writes target/bench-report/report.md (tables, goals) and
    /// report.svg (a bar chart) and prints the report
    Bench(BenchArgs),
    /// Each fuzz target of fuzz/ (cargo fuzz, libFuzzer, AddressSanitizer) for a bounded time;
    /// installs cargo-fuzz if missing; fails on a crash, naming the input that caused it
    Fuzz(FuzzArgs),
}

/// `fuzz [--seconds N] [--target NAME]...`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct FuzzArgs {
    /// How long each target runs, in seconds
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub seconds: u64,
    /// Run this target only (repeatable); default: every target
    #[arg(long = "target", value_name = "NAME", value_parser = PossibleValuesParser::new(crate::fuzz::TARGETS))]
    pub target: Vec<String>,
}

/// `--engine NAME`, any number of times: one of the engines the harness knows.
fn engine_names() -> PossibleValuesParser {
    PossibleValuesParser::new(proxy_wasm_harness::engines::ALL.iter().map(|(name, _)| *name))
}

/// The engines named, in order, without repeats.
fn unique(engines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for engine in engines {
        if !out.contains(engine) {
            out.push(engine.clone());
        }
    }
    out
}

/// `conformance [--engine NAME]... [--case TEXT]... [--bless]`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConformanceArgs {
    /// Run on this engine only (repeatable; built in through its Cargo feature of
    /// proxy-wasm-harness); default: every engine built in
    #[arg(long = "engine", value_name = "NAME", value_parser = engine_names())]
    engine: Vec<String>,
    /// Run only cases whose name contains TEXT (repeatable)
    #[arg(long = "case", value_name = "TEXT")]
    case: Vec<String>,
    /// Rewrite each case's golden transcript from the first engine that runs it (read the diff
    /// before committing)
    #[arg(long)]
    bless: bool,
}

impl ConformanceArgs {
    /// The engines named with `--engine`, in order, without repeats; empty means all built in.
    pub fn engines(&self) -> Vec<String> {
        unique(&self.engine)
    }

    /// `--case TEXT` and `--bless`, passed on to the conformance binary.
    pub fn pass_on(&self) -> Vec<String> {
        let mut out = Vec::new();
        for text in &self.case {
            out.extend(["--case".to_string(), text.clone()]);
        }
        if self.bless {
            out.push("--bless".to_string());
        }
        out
    }
}

/// `bench [--engine NAME]... [--quick]`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BenchArgs {
    /// Run on this engine only (repeatable); default: every engine built in
    #[arg(long = "engine", value_name = "NAME", value_parser = engine_names())]
    engine: Vec<String>,
    /// Shorter warm-up and measurement (about two minutes after the build)
    #[arg(long)]
    pub quick: bool,
    /// Instead of timing: count the instructions of the per-call workloads under valgrind and
    /// fail if ours is more than 10% above benches/instruction-counts.tsv
    #[arg(long, conflicts_with_all = ["quick", "record_counts"])]
    pub check: bool,
    /// Instead of timing: count the instructions of the per-call workloads under valgrind and
    /// write them to benches/instruction-counts.tsv
    #[arg(long, conflicts_with = "quick")]
    pub record_counts: bool,
}

impl BenchArgs {
    /// The engines named with `--engine`, in order, without repeats; empty means all built in.
    pub fn engines(&self) -> Vec<String> {
        unique(&self.engine)
    }
}

/// Parses the arguments after `cargo xtask`. `--help` and `help` are errors of kind
/// [`clap::error::ErrorKind::DisplayHelp`] carrying the text, as clap reports them.
pub fn parse<I, S>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let args = std::iter::once(std::ffi::OsString::from("xtask")).chain(args.into_iter().map(Into::into));
    Cli::try_parse_from(args).map(|cli| cli.command)
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    use super::*;

    fn conformance(engines: &[&str], case: &[&str], bless: bool) -> Command {
        Command::Conformance(ConformanceArgs {
            engine: engines.iter().map(|e| e.to_string()).collect(),
            case: case.iter().map(|c| c.to_string()).collect(),
            bless,
        })
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_each_subcommand() {
        assert_eq!(parse(["setup"]).unwrap(), Command::Setup);
        assert_eq!(parse(["build-plugins"]).unwrap(), Command::BuildPlugins);
        assert_eq!(parse(["test"]).unwrap(), Command::Test);
        assert_eq!(parse(["conformance"]).unwrap(), conformance(&[], &[], false));
        let Command::Bench(bench) = parse(["bench", "--quick"]).unwrap() else {
            panic!("not bench")
        };
        assert!(bench.quick);
        assert!(bench.engines().is_empty());
    }

    #[test]
    fn help_in_any_spelling_lists_the_subcommands_and_options() {
        for args in [&["help"][..], &["-h"], &["--help"]] {
            let help = parse(args).unwrap_err();
            assert_eq!(help.kind(), ErrorKind::DisplayHelp, "{args:?}");
            assert_eq!(help.exit_code(), 0, "{args:?}");
            let text = help.to_string();
            for subcommand in ["setup", "build-plugins", "test", "conformance", "bench", "fuzz", "help"] {
                assert!(text.contains(&format!("  {subcommand} ")), "{args:?} lacks {subcommand}:\n{text}");
            }
        }
        let help = parse(["conformance", "--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        let text = help.to_string();
        for option in ["--engine <NAME>", "--case <TEXT>", "--bless", "wasmer-singlepass"] {
            assert!(text.contains(option), "conformance --help lacks {option}:\n{text}");
        }
        let text = parse(["bench", "-h"]).unwrap_err().to_string();
        assert!(text.contains("--engine <NAME>") && text.contains("--quick"), "{text}");
        let text = parse(["help", "test"]).unwrap_err().to_string();
        assert!(text.contains("cargo test --workspace"), "{text}");
    }

    #[test]
    fn missing_or_unknown_subcommand_is_a_usage_error() {
        let none = parse::<[&str; 0], &str>([]).unwrap_err();
        assert_eq!(none.exit_code(), 2);
        assert!(none.to_string().contains("Usage: cargo xtask <COMMAND>"), "{none}");
        let unknown = parse(["frobnicate"]).unwrap_err();
        assert_eq!(unknown.kind(), ErrorKind::InvalidSubcommand);
        assert!(unknown.to_string().contains("unrecognized subcommand 'frobnicate'"), "{unknown}");
        assert_eq!(unknown.exit_code(), 2);
    }

    #[test]
    fn engines_in_both_spellings_without_repeats() {
        let Command::Conformance(args) =
            parse(["conformance", "--engine", "wasmtime", "--engine=null", "--engine", "wasmtime"]).unwrap()
        else {
            panic!("not conformance")
        };
        assert_eq!(args.engines(), ["wasmtime", "null"]);
        assert!(args.pass_on().is_empty());
        assert_eq!(
            parse(["conformance", "--engine", "wasmer-singlepass"]).unwrap(),
            conformance(&["wasmer-singlepass"], &[], false)
        );
        let Command::Conformance(args) = parse(["conformance", "--case", "sdk/", "--bless"]).unwrap() else {
            panic!("not conformance")
        };
        assert_eq!(args.pass_on(), ["--case", "sdk/", "--bless"]);
        assert_eq!(parse(["conformance", "--case"]).unwrap_err().kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn fuzz_takes_seconds_and_targets() {
        assert_eq!(parse(["fuzz"]).unwrap(), Command::Fuzz(FuzzArgs { seconds: 60, target: vec![] }));
        assert_eq!(
            parse(["fuzz", "--seconds", "5", "--target", "hostcalls"]).unwrap(),
            Command::Fuzz(FuzzArgs { seconds: 5, target: vec!["hostcalls".into()] })
        );
        assert_eq!(parse(["fuzz", "--target", "nope"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(["fuzz", "--seconds", "-1"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn bench_takes_engines_and_quick_in_any_order() {
        let Command::Bench(args) = parse(["bench", "--engine", "null", "--quick", "--engine=wasmtime"]).unwrap() else {
            panic!("not bench")
        };
        assert_eq!((args.engines(), args.quick), (vec!["null".to_string(), "wasmtime".to_string()], true));
        let Command::Bench(args) = parse(["bench"]).unwrap() else { panic!("not bench") };
        assert_eq!((args.engines(), args.quick), (vec![], false));
        assert_eq!(parse(["bench", "--engine", "nope"]).unwrap_err().exit_code(), 2);
        let Command::Bench(args) = parse(["bench", "--check", "--engine", "null"]).unwrap() else { panic!("not bench") };
        assert!(args.check && !args.record_counts && !args.quick);
        let Command::Bench(args) = parse(["bench", "--record-counts"]).unwrap() else { panic!("not bench") };
        assert!(args.record_counts && !args.check);
        for clash in [&["bench", "--check", "--quick"][..], &["bench", "--check", "--record-counts"], &["bench", "--record-counts", "--quick"]] {
            assert_eq!(parse(clash).unwrap_err().kind(), ErrorKind::ArgumentConflict, "{clash:?}");
        }
    }

    #[test]
    fn unknown_engine_names_the_valid_ones() {
        let error = parse(["conformance", "--engine", "nope"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidValue);
        assert_eq!(error.exit_code(), 2);
        let text = error.to_string();
        assert!(text.contains("invalid value 'nope' for '--engine <NAME>'"), "{text}");
        let names: Vec<&str> = proxy_wasm_harness::engines::ALL.iter().map(|(name, _)| *name).collect();
        assert!(text.contains(&format!("[possible values: {}]", names.join(", "))), "{text}");
        let error = parse(["conformance", "--engine"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("a value is required for '--engine <NAME>'"), "{error}");
    }

    #[test]
    fn stray_arguments_are_rejected() {
        for args in [&["test", "extra"][..], &["bench", "--slow"], &["conformance", "wasmtime"], &["setup", "-v"]] {
            let error = parse(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
            assert_eq!(error.kind(), ErrorKind::UnknownArgument, "{args:?}: {error}");
            let stray = args[1];
            assert!(error.to_string().contains(&format!("unexpected argument '{stray}'")), "{args:?}: {error}");
        }
    }
}
