//! The performance guard that does not depend on wall time: instructions per iteration of the
//! per-call workloads (`benches/src/cases.rs`), counted by valgrind's callgrind, kept in
//! [`COUNTS_FILE`] and checked against it.
//!
//! `cargo xtask bench --check` builds `pwcount` (the benches' runner of one workload) under the
//! `counts` profile (release, in `target/counts/`), runs every [`WORKLOADS`] entry on every
//! engine valgrind can run, ours and its baseline, under `valgrind --tool=callgrind
//! --toggle-collect=*pwcount*measured*` (so only the measured loop counts, not compiling and
//! loading), and divides the count by the iterations.
//! Our side may be at most [`TOLERANCE`] above the recorded count; the baseline side is shown
//! for the ratio, not checked (it is the engine's cost, not ours). `cargo xtask bench
//! --record-counts` writes the file anew. Counts are deterministic on one machine (repeat runs
//! agree to the instruction); across machines the engines' JIT code may differ slightly, which
//! the tolerance absorbs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};

use crate::cmd::{describe_exit, Cmd};
use crate::{cargo, engine_features, step, target_dir, BENCH_PACKAGE};

/// The recorded counts, relative to the workspace root.
pub const COUNTS_FILE: &str = "benches/instruction-counts.tsv";

/// How far above the recorded count our side may be: 10%.
pub const TOLERANCE: f64 = 0.10;

/// The workloads counted, each with its iterations (what `pwcount` takes): enough that the
/// count per iteration is exact to well under the tolerance.
pub const WORKLOADS: &[(&str, u32)] = &[("lifecycle", 500), ("header-lookup", 50), ("clone", 50), ("ephemeral", 50)];

/// What the printed table counts.
const TABLE_CAPTION: &str = "Instructions per iteration (callgrind; a header-lookup iteration is 100 lookups). The \
     README's goals are wall-time ratios from `cargo xtask bench`; these counts guard against regressions.";

/// Engines valgrind cannot run, and why.
pub const NOT_COUNTED: &[(&str, &str)] = &[(
    "wamr",
    "valgrind stops WAMR's fast interpreter with SIGILL (wasm_interp_fast.c: an instruction valgrind does not emulate)",
)];

/// One count: a workload on an engine, ours or its baseline, in instructions per iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    /// The workload (`lifecycle`, `header-lookup`).
    pub workload: String,
    /// The engine.
    pub engine: String,
    /// `ours` or `baseline`.
    pub side: String,
    /// Instructions per iteration.
    pub instructions: f64,
}

impl Count {
    fn key(&self) -> (String, String, String) {
        (self.workload.clone(), self.engine.clone(), self.side.clone())
    }
}

/// Whether valgrind is on PATH.
pub fn valgrind_present() -> bool {
    Cmd::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Parses [`COUNTS_FILE`]: `#` comments, then one `workload engine side instructions` line
/// (tab-separated) per count. Errors name the file and line.
pub fn parse(text: &str, file: &Path) -> anyhow::Result<Vec<Count>> {
    let mut counts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [workload, engine, side, instructions] = fields[..] else {
            bail!("{}:{}: expected `workload<TAB>engine<TAB>side<TAB>instructions`, found `{line}`", file.display(), n + 1);
        };
        if side != "ours" && side != "baseline" {
            bail!("{}:{}: the side must be `ours` or `baseline`, found `{side}`", file.display(), n + 1);
        }
        let instructions: f64 = instructions
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| anyhow!("{}:{}: `{instructions}` is not a positive number of instructions", file.display(), n + 1))?;
        counts.push(Count { workload: workload.into(), engine: engine.into(), side: side.into(), instructions });
    }
    Ok(counts)
}

/// The file's text for `counts`, with a header saying what it is and how it was made.
pub fn render(counts: &[Count]) -> String {
    let mut out = String::from(
        "# Instructions per iteration of the per-call workloads (benches/src/cases.rs), counted by\n\
         # callgrind: written by `cargo xtask bench --record-counts`, checked by `cargo xtask bench\n\
         # --check` (ours at most 10% above). header-lookup iterations are 100 lookups each; clone\n\
         # and ephemeral have no baseline on the Null VM (nothing to instantiate).\n\
         # workload\tengine\tside\tinstructions\n",
    );
    for c in counts {
        let _ = writeln!(out, "{}\t{}\t{}\t{:.0}", c.workload, c.engine, c.side, c.instructions);
    }
    out
}

/// A count above its recorded one by more than the tolerance, as a line for people; `None`
/// when within it (or not recorded: a new engine or workload is reported by [`compare`]).
fn regression(now: &Count, recorded: &Count) -> Option<String> {
    let limit = recorded.instructions * (1.0 + TOLERANCE);
    (now.side == "ours" && now.instructions > limit).then(|| {
        format!(
            "{} on {}: {:.0} instructions per iteration, {:+.1}% over the recorded {:.0} (at most +{:.0}%)",
            now.workload,
            now.engine,
            now.instructions,
            (now.instructions / recorded.instructions - 1.0) * 100.0,
            recorded.instructions,
            TOLERANCE * 100.0
        )
    })
}

/// The table of `now` beside `recorded`, and the regressions (empty when the check passes).
pub fn compare(now: &[Count], recorded: &[Count]) -> (String, Vec<String>) {
    let recorded: BTreeMap<_, _> = recorded.iter().map(|c| (c.key(), c)).collect();
    let baseline_of = |c: &Count| now.iter().find(|b| b.workload == c.workload && b.engine == c.engine && b.side == "baseline");
    let mut table = String::from("| workload | engine | ours | recorded | change | baseline | ours / baseline |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    let mut regressions = Vec::new();
    for c in now.iter().filter(|c| c.side == "ours") {
        let old = recorded.get(&c.key());
        let change = old.map_or("not recorded".to_string(), |o| format!("{:+.1}%", (c.instructions / o.instructions - 1.0) * 100.0));
        let baseline = baseline_of(c);
        let _ = writeln!(
            table,
            "| {} | {} | {:.0} | {} | {} | {} | {} |",
            c.workload,
            c.engine,
            c.instructions,
            old.map_or("-".to_string(), |o| format!("{:.0}", o.instructions)),
            change,
            baseline.map_or("-".to_string(), |b| format!("{:.0}", b.instructions)),
            baseline.map_or("-".to_string(), |b| format!("{:.2}x", c.instructions / b.instructions)),
        );
        if let Some(line) = old.and_then(|o| regression(c, o)) {
            regressions.push(line);
        }
    }
    (table, regressions)
}

/// The engines to count: `engines` (or every engine built by default), less [`NOT_COUNTED`].
fn countable(engines: &[String]) -> Vec<String> {
    let all: Vec<String> = if engines.is_empty() {
        proxy_wasm_harness::engines::ALL.iter().map(|(name, _)| name.to_string()).collect()
    } else {
        engines.to_vec()
    };
    all.into_iter()
        .filter(|e| match NOT_COUNTED.iter().find(|(n, _)| n == e) {
            Some((_, why)) => {
                step(format_args!("counts: {e} is not counted: {why}"));
                false
            }
            None => true,
        })
        .collect()
}

/// Builds `pwcount` with `engines` (none: the default engines) and counts every workload.
pub fn measure(root: &Path, engines: &[String]) -> anyhow::Result<Vec<Count>> {
    let mut build = cargo(root).args(["build", "--profile", "counts", "-p", BENCH_PACKAGE, "--bin", "pwcount"]);
    if !engines.is_empty() {
        build = build.args(["--features", &engine_features(engines)]);
    }
    build.run("building pwcount")?;
    let pwcount = target_dir(root).join("counts").join("pwcount");
    let out_dir = target_dir(root).join("callgrind");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut counts = Vec::new();
    for engine in countable(engines) {
        for &(workload, iterations) in WORKLOADS {
            for side in ["ours", "baseline"] {
                if let Some(instructions) = count(&pwcount, &out_dir, workload, &engine, side, iterations)? {
                    counts.push(Count { workload: workload.into(), engine: engine.clone(), side: side.into(), instructions });
                }
            }
        }
    }
    Ok(counts)
}

/// Instructions per iteration of one side of one workload; `None` when the engine has no
/// baseline for it (`pwcount` exits with 3).
fn count(pwcount: &Path, out_dir: &Path, workload: &str, engine: &str, side: &str, iterations: u32) -> anyhow::Result<Option<f64>> {
    let out: PathBuf = out_dir.join(format!("callgrind.{workload}.{engine}.{side}.out"));
    let _ = std::fs::remove_file(&out);
    let command = Cmd::new("valgrind").args([
        "--tool=callgrind".to_string(),
        "--toggle-collect=*pwcount*measured*".to_string(),
        format!("--callgrind-out-file={}", out.display()),
        pwcount.display().to_string(),
        workload.to_string(),
        engine.to_string(),
        side.to_string(),
        iterations.to_string(),
    ]);
    let what = format!("counting {workload} on {engine} ({side})");
    step(format_args!("$ {}", command.argv().join(" ")));
    let output = command.output().map_err(|e| command.spawn_error(&what, &e))?;
    match output.status.code() {
        Some(0) => {}
        Some(3) => return Ok(None),
        code => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("{what} failed ({}):\n{}", describe_exit(code), tail.join("\n"));
        }
    }
    let text = std::fs::read_to_string(&out).with_context(|| format!("{what}: cannot read {}", out.display()))?;
    let total = summary(&text).ok_or_else(|| anyhow!("{what}: no `summary:` line in {}", out.display()))?;
    if total == 0 {
        bail!("{what}: callgrind counted nothing in `measured` ({}): was pwcount built without symbols?", out.display());
    }
    Ok(Some(total as f64 / f64::from(iterations)))
}

/// The total of a callgrind output file's `summary:` line.
fn summary(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("summary:")).and_then(|v| v.trim().parse().ok())
}

/// `cargo xtask bench --check`: counts and compares with [`COUNTS_FILE`]; fails on a
/// regression, naming each.
pub fn check(root: &Path, engines: &[String]) -> anyhow::Result<()> {
    let file = root.join(COUNTS_FILE);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {} (write it with `cargo xtask bench --record-counts`)", file.display()))?;
    let recorded = parse(&text, &file)?;
    let now = measure(root, engines)?;
    let (table, regressions) = compare(&now, &recorded);
    println!("{TABLE_CAPTION}\n\n{table}");
    if !regressions.is_empty() {
        bail!(
            "instruction counts over the recorded ones in {} by more than {:.0}%:\n  {}\n(if the extra work is wanted, record the new counts with `cargo xtask bench --record-counts` and say why in the commit)",
            COUNTS_FILE,
            TOLERANCE * 100.0,
            regressions.join("\n  ")
        );
    }
    step(format_args!("counts: every workload within {:.0}% of {}", TOLERANCE * 100.0, COUNTS_FILE));
    Ok(())
}

/// `cargo xtask bench --record-counts`: counts and writes [`COUNTS_FILE`].
pub fn record(root: &Path, engines: &[String]) -> anyhow::Result<()> {
    let now = measure(root, engines)?;
    let file = root.join(COUNTS_FILE);
    std::fs::write(&file, render(&now)).with_context(|| format!("cannot write {}", file.display()))?;
    let (table, _) = compare(&now, &[]);
    println!("{TABLE_CAPTION}\n\n{table}");
    step(format_args!("wrote {}", file.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(workload: &str, engine: &str, side: &str, instructions: f64) -> Count {
        Count { workload: workload.into(), engine: engine.into(), side: side.into(), instructions }
    }

    #[test]
    fn the_file_round_trips_and_bad_lines_name_file_and_line() {
        let counts = vec![count("lifecycle", "wasmtime", "ours", 4023.0), count("lifecycle", "wasmtime", "baseline", 1178.0)];
        let file = Path::new("counts.tsv");
        assert_eq!(parse(&render(&counts), file).unwrap(), counts);
        let e = parse("lifecycle\twasmtime\tours\n", file).unwrap_err();
        assert!(e.to_string().starts_with("counts.tsv:1: expected"), "{e}");
        let e = parse("# c\nlifecycle\twasmtime\ttheirs\t5\n", file).unwrap_err();
        assert!(e.to_string().contains("counts.tsv:2: the side must be"), "{e}");
        let e = parse("lifecycle\twasmtime\tours\t-5\n", file).unwrap_err();
        assert!(e.to_string().contains("not a positive number"), "{e}");
    }

    #[test]
    fn ours_over_the_tolerance_is_a_regression_the_baseline_never() {
        let recorded = vec![count("lifecycle", "wasmtime", "ours", 1000.0), count("lifecycle", "wasmtime", "baseline", 500.0)];
        let within = vec![count("lifecycle", "wasmtime", "ours", 1100.0), count("lifecycle", "wasmtime", "baseline", 900.0)];
        let (table, regressions) = compare(&within, &recorded);
        assert!(regressions.is_empty(), "{regressions:?}");
        assert!(table.contains("| lifecycle | wasmtime | 1100 | 1000 | +10.0% | 900 | 1.22x |"), "{table}");
        let over = vec![count("lifecycle", "wasmtime", "ours", 1101.0)];
        let (_, regressions) = compare(&over, &recorded);
        assert_eq!(regressions.len(), 1);
        assert!(regressions[0].contains("lifecycle on wasmtime: 1101 instructions per iteration, +10.1% over the recorded 1000"), "{}", regressions[0]);
        let (table, regressions) = compare(&[count("header-lookup", "v8", "ours", 9.0)], &recorded);
        assert!(regressions.is_empty() && table.contains("not recorded"), "{table}");
    }

    #[test]
    fn the_summary_line_gives_the_total() {
        assert_eq!(summary("events: Ir\nsummary: 2011261\ntotals: 2011261\n"), Some(2_011_261));
        assert_eq!(summary("events: Ir\n"), None);
    }
}
