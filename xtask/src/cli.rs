//! The subcommands and their arguments.

use crate::Error;

/// The usage text, printed by `cargo xtask help` and after a usage error.
pub const USAGE: &str = "\
usage: cargo xtask <subcommand> [options]

subcommands:
  setup                   install what the tests need (Rust targets
                          wasm32-unknown-unknown and wasm32-wasip1; g++ and
                          libnode108's run-time libraries; Debian's libnode
                          (V8 10.2) unpacked into target/libnode, or LIBNODE_ROOT)
  build-plugins           setup, then build the guest plugins in conformance/plugins
                          into target/guest/wasm32-unknown-unknown/release/
  test                    setup, build-plugins, then every test in the workspace
                          (cargo test --workspace --all-targets)
  conformance [--engine NAME]... [--case TEXT]... [--bless]
                          setup, build-plugins, then every conformance case on
                          every engine built in (or the engines named, built in
                          through their Cargo features): prints the case x engine
                          matrix, writes target/conformance/report.{md,json},
                          fails on any failing case; --case runs only cases whose
                          name contains TEXT, --bless rewrites golden transcripts
                          (read the diff before committing);
                          NAME is one of: wasmtime, wasmer, wasmer-singlepass, wamr, v8, null
  bench [--engine NAME]... [--quick]
                          setup, build-plugins, then the criterion benchmarks on
                          every engine built in (or the engines named): each
                          workload beside its baseline, and memory per worker VM;
                          writes target/bench-report/report.md (tables, goals)
                          and report.svg (a bar chart) and prints the report;
                          --quick shortens warm-up and measurement (about two
                          minutes after the build)
  help                    print this text
";

/// Engine names `--engine` accepts.
pub const ENGINES: &[&str] = &[
    "wasmtime",
    "wasmer",
    "wasmer-singlepass",
    "wamr",
    "v8",
    "null",
];

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help`, `-h`, `--help`.
    Help,
    /// `setup`.
    Setup,
    /// `build-plugins`.
    BuildPlugins,
    /// `test`.
    Test,
    /// `conformance [--engine NAME]... [--case TEXT]... [--bless]`: the engines named, in
    /// order, without repeats, and what is passed on to the suite's binary.
    Conformance {
        /// Engines named with `--engine`; empty means all built.
        engines: Vec<String>,
        /// `--case TEXT` and `--bless`, passed on to the conformance binary.
        pass_on: Vec<String>,
    },
    /// `bench [--engine NAME]... [--quick]`.
    Bench {
        /// Engines named with `--engine`; empty means all built.
        engines: Vec<String>,
        /// Shorter criterion runs.
        quick: bool,
    },
}

/// Parses the arguments after `cargo xtask`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, Error> {
    let mut args = args.into_iter();
    let Some(subcommand) = args.next() else {
        return Err(Error::usage("no subcommand given"));
    };
    let rest: Vec<String> = args.collect();
    if rest.iter().any(|arg| arg == "-h" || arg == "--help") {
        return Ok(Command::Help);
    }
    let command = match subcommand.as_str() {
        "help" | "-h" | "--help" => return Ok(Command::Help),
        "setup" => Command::Setup,
        "build-plugins" => Command::BuildPlugins,
        "test" => Command::Test,
        "conformance" => return parse_conformance(rest),
        "bench" => return parse_bench(rest),
        other => return Err(Error::usage(format!("unknown subcommand `{other}`"))),
    };
    match rest.first() {
        Some(arg) => Err(unexpected(&subcommand, arg)),
        None => Ok(command),
    }
}

fn parse_conformance(args: Vec<String>) -> Result<Command, Error> {
    let mut engines: Vec<String> = Vec::new();
    let mut pass_on: Vec<String> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--bless" {
            pass_on.push(arg);
            continue;
        }
        if arg == "--case" {
            let text = args.next().ok_or_else(|| Error::usage("--case needs text a case's name contains"))?;
            pass_on.extend([arg, text]);
            continue;
        }
        if !engine_option(&arg, &mut args, &mut engines)? {
            return Err(unexpected("conformance", &arg));
        }
    }
    Ok(Command::Conformance { engines, pass_on })
}

fn parse_bench(args: Vec<String>) -> Result<Command, Error> {
    let (mut engines, mut quick) = (Vec::new(), false);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--quick" {
            quick = true;
        } else if !engine_option(&arg, &mut args, &mut engines)? {
            return Err(unexpected("bench", &arg));
        }
    }
    Ok(Command::Bench { engines, quick })
}

/// Reads `--engine NAME` or `--engine=NAME` starting at `arg` into `engines` (in order, without
/// repeats). `Ok(false)` when `arg` is some other option.
fn engine_option(
    arg: &str,
    rest: &mut impl Iterator<Item = String>,
    engines: &mut Vec<String>,
) -> Result<bool, Error> {
    let name = if arg == "--engine" {
        rest.next().ok_or_else(|| {
            Error::usage(format!(
                "--engine needs a name, one of: {}",
                ENGINES.join(", ")
            ))
        })?
    } else if let Some(name) = arg.strip_prefix("--engine=") {
        name.to_string()
    } else {
        return Ok(false);
    };
    if !ENGINES.contains(&name.as_str()) {
        return Err(Error::usage(format!(
            "unknown engine `{name}`; valid engines: {}",
            ENGINES.join(", ")
        )));
    }
    if !engines.contains(&name) {
        engines.push(name);
    }
    Ok(true)
}

fn unexpected(subcommand: &str, arg: &str) -> Error {
    Error::usage(format!("unexpected argument `{arg}` for `{subcommand}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Command, Error> {
        parse(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn parses_each_subcommand() {
        assert_eq!(parse_str(&["setup"]), Ok(Command::Setup));
        assert_eq!(parse_str(&["build-plugins"]), Ok(Command::BuildPlugins));
        assert_eq!(parse_str(&["test"]), Ok(Command::Test));
        assert_eq!(
            parse_str(&["conformance"]),
            Ok(Command::Conformance { engines: vec![], pass_on: vec![] })
        );
        assert_eq!(
            parse_str(&["bench", "--quick"]),
            Ok(Command::Bench {
                engines: vec![],
                quick: true
            })
        );
    }

    #[test]
    fn help_in_any_spelling() {
        for args in [
            &["help"][..],
            &["-h"],
            &["--help"],
            &["test", "--help"],
            &["conformance", "-h"],
        ] {
            assert_eq!(parse_str(args), Ok(Command::Help), "{args:?}");
        }
    }

    #[test]
    fn missing_or_unknown_subcommand_is_a_usage_error() {
        let none = parse_str(&[]).unwrap_err();
        assert_eq!(
            (none.message(), none.exit_code(), none.show_usage()),
            ("no subcommand given", 2, true)
        );
        let unknown = parse_str(&["frobnicate"]).unwrap_err();
        assert_eq!(unknown.message(), "unknown subcommand `frobnicate`");
        assert_eq!(unknown.exit_code(), 2);
    }

    #[test]
    fn engines_in_both_spellings_without_repeats() {
        assert_eq!(
            parse_str(&[
                "conformance",
                "--engine",
                "wasmtime",
                "--engine=null",
                "--engine",
                "wasmtime"
            ]),
            Ok(Command::Conformance {
                engines: vec!["wasmtime".to_string(), "null".to_string()],
                pass_on: vec![]
            })
        );
        assert_eq!(
            parse_str(&["conformance", "--engine", "wasmer-singlepass"]),
            Ok(Command::Conformance {
                engines: vec!["wasmer-singlepass".to_string()],
                pass_on: vec![]
            })
        );
        assert_eq!(
            parse_str(&["conformance", "--case", "sdk/", "--bless"]),
            Ok(Command::Conformance {
                engines: vec![],
                pass_on: vec!["--case".to_string(), "sdk/".to_string(), "--bless".to_string()]
            })
        );
        assert!(parse_str(&["conformance", "--case"]).is_err());
    }

    #[test]
    fn bench_takes_engines_and_quick_in_any_order() {
        assert_eq!(
            parse_str(&["bench"]),
            Ok(Command::Bench {
                engines: vec![],
                quick: false
            })
        );
        assert_eq!(
            parse_str(&["bench", "--engine", "null", "--quick", "--engine=wasmtime"]),
            Ok(Command::Bench {
                engines: vec!["null".to_string(), "wasmtime".to_string()],
                quick: true
            })
        );
        assert_eq!(
            parse_str(&["bench", "--engine", "nope"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn unknown_engine_names_the_valid_ones() {
        let error = parse_str(&["conformance", "--engine", "nope"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert_eq!(
            error.message(),
            "unknown engine `nope`; valid engines: wasmtime, wasmer, wasmer-singlepass, wamr, v8, null"
        );
        let error = parse_str(&["conformance", "--engine"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error.message().starts_with("--engine needs a name"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn stray_arguments_are_rejected() {
        for args in [
            &["test", "extra"][..],
            &["bench", "--slow"],
            &["conformance", "wasmtime"],
            &["setup", "-v"],
        ] {
            let error = parse_str(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
            assert!(
                error.message().starts_with("unexpected argument"),
                "{args:?}: {}",
                error.message()
            );
        }
    }
}
