//! `proxy-wasm-conformance`: runs the conformance suite on the engines built in and prints
//! the case-by-engine matrix. `cargo xtask conformance` runs it; see `--help`.

use std::process::ExitCode;

use proxy_wasm_conformance::{case, cases_dir, report, runner::EngineRun};
use proxy_wasm_harness::engines;

const USAGE: &str = "\
usage: proxy-wasm-conformance [--engine NAME]... [--case TEXT]... [--bless] [--report-dir DIR]
  --engine NAME   run on this engine (default: every engine built in)
  --case TEXT     run only cases whose name contains TEXT
  --bless         write each case's golden transcript from the first engine that runs it,
                  then judge the other engines against it; read the diff before committing
  --report-dir    where report.md and report.json go (default: target/conformance)
Exits 1 when a case fails, 2 on bad usage.
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<bool, String> {
    let mut engine_names = Vec::new();
    let mut filters = Vec::new();
    let mut bless = false;
    let mut report_dir = guest_plugins::workspace_root().join("target").join("conformance");
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--engine" => engine_names.push(it.next().ok_or("--engine needs a name")?),
            "--case" => filters.push(it.next().ok_or("--case needs text")?),
            "--bless" => bless = true,
            "--report-dir" => report_dir = it.next().ok_or("--report-dir needs a directory")?.into(),
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(true);
            }
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    if engine_names.is_empty() {
        engine_names = engines::built_in().into_iter().map(String::from).collect();
    }
    let engines = engine_names
        .iter()
        .map(|n| engines::engine(n).map(EngineRun::new).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cases = case::load_all(&cases_dir())?;
    if !filters.is_empty() {
        cases.retain(|c| filters.iter().any(|f| c.name.contains(f.as_str())));
    }
    if cases.is_empty() {
        return Err("no case matches".into());
    }
    eprintln!("conformance: {} cases on {}", cases.len(), engine_names.join(", "));
    let matrix = report::run(&engines, &cases, bless, &mut std::io::stderr());
    print!("{}", matrix.table());
    for (case, engine, why) in matrix.failures() {
        println!("\nFAIL {case} on {engine}:\n{why}");
    }
    matrix.write(&report_dir)?;
    println!("reports: {}, {}", report_dir.join("report.md").display(), report_dir.join("report.json").display());
    Ok(matrix.failures().is_empty())
}
