//! The benchmark report: the bench binaries' manifests (`manifest-*.tsv`, see
//! `benches/src/run.rs`) joined with criterion's estimates (its JSON files, read with
//! `serde_json`), as Markdown tables, the goals with pass or miss, and an SVG bar chart.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, Context as _};
use serde_json::Value;

/// A workload, as a bench binary declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Its id, for example `lifecycle`.
    pub id: String,
    /// A one-line title.
    pub title: String,
    /// What one measurement is (`per stream`, `per lookup`, ...).
    pub unit: String,
    /// What its baseline is.
    pub baseline: String,
}

/// One measurement the manifest names: a criterion benchmark and how many operations one
/// iteration does.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The workload.
    pub workload: String,
    /// The engine.
    pub engine: String,
    /// Criterion's benchmark id.
    pub full_id: String,
    /// Operations per iteration.
    pub divisor: f64,
}

/// Everything the manifests say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// The workloads, in report order.
    pub workloads: Vec<Workload>,
    /// Our layer's measurements.
    pub ours: Vec<Entry>,
    /// The baselines.
    pub baselines: Vec<Entry>,
    /// (workload, engine, reason) for workloads an engine sat out.
    pub skips: Vec<(String, String, String)>,
    /// (engine, plugin, bytes per VM, VMs) resident memory measurements.
    pub memory: Vec<(String, String, f64, u64)>,
}

impl Manifest {
    /// Adds the lines of one manifest file. Unknown or short lines are errors naming the line.
    pub fn add(&mut self, text: &str) -> anyhow::Result<()> {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let bad = || anyhow!("manifest line {}: cannot read `{line}`", n + 1);
            let entry = |f: &[&str]| -> anyhow::Result<Entry> {
                Ok(Entry {
                    workload: f[1].to_string(),
                    engine: f[2].to_string(),
                    full_id: f[3].to_string(),
                    divisor: f[4].parse().map_err(|_| bad())?,
                })
            };
            match (f[0], f.len()) {
                ("workload", 5) => {
                    if !self.workloads.iter().any(|w| w.id == f[1]) {
                        self.workloads.push(Workload {
                            id: f[1].into(),
                            title: f[2].into(),
                            unit: f[3].into(),
                            baseline: f[4].into(),
                        });
                    }
                }
                ("ours", 5) => self.ours.push(entry(&f)?),
                ("baseline", 5) => self.baselines.push(entry(&f)?),
                ("skip", 4) => self.skips.push((f[1].into(), f[2].into(), f[3].into())),
                ("memory", 5) => self.memory.push((
                    f[1].into(),
                    f[2].into(),
                    f[3].parse().map_err(|_| bad())?,
                    f[4].parse().map_err(|_| bad())?,
                )),
                _ => return Err(bad()),
            }
        }
        Ok(())
    }

    /// The engines in the order they first appear.
    pub fn engines(&self) -> Vec<String> {
        let mut engines: Vec<String> = Vec::new();
        let all = self
            .ours
            .iter()
            .map(|e| &e.engine)
            .chain(self.skips.iter().map(|s| &s.1))
            .chain(self.memory.iter().map(|m| &m.0));
        for engine in all {
            if !engines.contains(engine) {
                engines.push(engine.clone());
            }
        }
        engines
    }
}

/// The manifests in `dir`: `manifest-lifecycle.tsv`, `manifest-workloads.tsv`,
/// `manifest-memory.tsv` first, then any others by name.
pub fn read_manifests(dir: &Path) -> anyhow::Result<Manifest> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("manifest-") && n.ends_with(".tsv"))
        })
        .collect();
    let rank = |p: &PathBuf| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let known = [
            "manifest-lifecycle.tsv",
            "manifest-workloads.tsv",
            "manifest-memory.tsv",
        ];
        (
            known.iter().position(|k| *k == name).unwrap_or(known.len()),
            name.to_string(),
        )
    };
    files.sort_by_key(rank);
    let mut manifest = Manifest::default();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        manifest
            .add(&text)
            .with_context(|| file.display().to_string())?;
    }
    Ok(manifest)
}

/// Criterion's estimates under `dir` (its `target/criterion`): benchmark id to the median time
/// per iteration in nanoseconds, for every benchmark whose estimates were written at or after
/// `since` (older ones are from an earlier run).
pub fn read_estimates(dir: &Path, since: SystemTime) -> HashMap<String, f64> {
    let mut found = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                if let Some((id, ns)) = read_estimate(&path, since) {
                    found.insert(id, ns);
                }
            } else {
                stack.push(path);
            }
        }
    }
    found
}

/// The benchmark id and median of one criterion `new/` directory.
fn read_estimate(new: &Path, since: SystemTime) -> Option<(String, f64)> {
    let estimates = new.join("estimates.json");
    let written = std::fs::metadata(&estimates).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    let read = |path: PathBuf| -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    };
    let benchmark = read(new.join("benchmark.json"))?;
    let estimates = read(estimates)?;
    let id = benchmark.get("full_id")?.as_str()?.to_string();
    let median = estimates.get("median")?.get("point_estimate")?.as_f64()?;
    Some((id, median))
}

/// One engine's line in a workload's table. Times in nanoseconds per operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The engine.
    pub engine: String,
    /// Our layer's time, if measured.
    pub ours: Option<f64>,
    /// The baseline's time, if there is one and it was measured.
    pub baseline: Option<f64>,
    /// Our time over Wasmtime's on the same workload.
    pub vs_wasmtime: Option<f64>,
    /// Our time over the Null VM's (native code) on the same workload.
    pub vs_native: Option<f64>,
    /// Why the engine sat out, if it did.
    pub skipped: Option<String>,
}

impl Row {
    /// Ours over the baseline.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.ours? / self.baseline?)
    }
}

/// A workload's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The workload.
    pub workload: Workload,
    /// One row per engine.
    pub rows: Vec<Row>,
}

/// A goal: a ratio, a time or a memory figure with its most.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Ours over baseline of a workload, on one engine or (`None`) every engine.
    Ratio(&'static str, Option<&'static str>),
    /// Our time of a workload on one engine, in nanoseconds.
    Time(&'static str, &'static str),
    /// Bytes per extra worker VM of an engine and plugin (`small`, `1mib`).
    Memory(&'static str, &'static str),
}

/// A goal of the project.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    /// What it says.
    pub text: &'static str,
    /// What is measured.
    pub measure: Measure,
    /// The most the measure may be.
    pub max: f64,
}

/// The performance goals (issue 22, after `/work/shared/design.md`, "Performance
/// principles"): the reference C++ host measured beside ours on Wasmtime adds about 100 ns per
/// empty stream over the raw engine, so ours may add at most half the raw cost.
pub const GOALS: &[Goal] = &[
    Goal {
        text: "empty stream lifecycle on Wasmtime at most 1.5x the raw engine",
        measure: Measure::Ratio("lifecycle", Some("wasmtime")),
        max: 1.5,
    },
    Goal {
        text: "empty stream lifecycle on Wasmer (Cranelift) at most 1.5x the raw engine",
        measure: Measure::Ratio("lifecycle", Some("wasmer")),
        max: 1.5,
    },
    Goal {
        text: "empty stream lifecycle on Wasmer (Singlepass) at most 1.5x the raw engine",
        measure: Measure::Ratio("lifecycle", Some("wasmer-singlepass")),
        max: 1.5,
    },
    Goal {
        text: "empty stream lifecycle on the Null VM at most 5x direct calls",
        measure: Measure::Ratio("lifecycle", Some("null")),
        max: 5.0,
    },
    Goal {
        text: "one header lookup on Wasmtime at most 1.5x a raw host call plus the copy",
        measure: Measure::Ratio("header-lookup", Some("wasmtime")),
        max: 1.5,
    },
    Goal {
        text: "CPU-bound (sha256 of 1 MiB) on Wasmtime at most 1.5x native",
        measure: Measure::Ratio("sha256-1m", Some("wasmtime")),
        max: 1.5,
    },
    Goal {
        text: "a Wasmtime VM clone at most 1.2x the raw engine's instance plus root callbacks",
        measure: Measure::Ratio("clone", Some("wasmtime")),
        max: 1.2,
    },
    Goal {
        text: "an ephemeral Wasmtime VM per stream at most 1.3x a raw instance plus the stream's calls",
        measure: Measure::Ratio("ephemeral", Some("wasmtime")),
        max: 1.3,
    },
    Goal {
        text: "at most 2 MiB per extra Wasmtime worker VM for a 1 MiB plugin",
        measure: Measure::Memory("wasmtime", "1mib"),
        max: 2.0 * 1024.0 * 1024.0,
    },
];

/// A goal checked on one engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The goal.
    pub goal: Goal,
    /// The engine.
    pub engine: String,
    /// The measured value (ratio, nanoseconds or bytes), if measured.
    pub value: Option<f64>,
}

impl Verdict {
    /// `pass`, `miss`, or `not measured`.
    pub fn result(&self) -> &'static str {
        match self.value {
            Some(v) if v <= self.goal.max => "pass",
            Some(_) => "miss",
            None => "not measured",
        }
    }

    fn show(&self, value: f64) -> String {
        match self.goal.measure {
            Measure::Ratio(..) => format!("{value:.2}x"),
            Measure::Time(..) => format_ns(value),
            Measure::Memory(..) => format_bytes(value),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One table per workload.
    pub tables: Vec<Table>,
    /// Resident memory: (engine, plugin, bytes per VM, VMs).
    pub memory: Vec<(String, String, f64, u64)>,
    /// Memory measurements an engine sat out: (what, engine, reason).
    pub memory_skips: Vec<(String, String, String)>,
    /// Every goal on every engine it applies to.
    pub verdicts: Vec<Verdict>,
}

impl Report {
    /// Joins the manifest with the estimates (benchmark id to nanoseconds per iteration).
    pub fn new(manifest: &Manifest, estimates: &HashMap<String, f64>) -> Report {
        let time = |entries: &[Entry], workload: &str, engine: &str| {
            let e = entries
                .iter()
                .find(|e| e.workload == workload && e.engine == engine)?;
            Some(estimates.get(&e.full_id)? / e.divisor)
        };
        let engines = manifest.engines();
        let mut tables = Vec::new();
        for w in &manifest.workloads {
            let ours_of = |engine: &str| time(&manifest.ours, &w.id, engine);
            let mut rows = Vec::new();
            for engine in &engines {
                let skipped = manifest
                    .skips
                    .iter()
                    .find(|s| s.0 == w.id && &s.1 == engine)
                    .map(|s| s.2.clone());
                let declared = manifest
                    .ours
                    .iter()
                    .any(|e| e.workload == w.id && &e.engine == engine);
                if skipped.is_none() && !declared {
                    continue;
                }
                let ours = ours_of(engine);
                let ratio_to = |other: Option<f64>| Some(ours? / other?);
                rows.push(Row {
                    engine: engine.clone(),
                    ours,
                    baseline: time(&manifest.baselines, &w.id, engine),
                    vs_wasmtime: ratio_to(ours_of("wasmtime")),
                    vs_native: ratio_to(ours_of("null")),
                    skipped,
                });
            }
            tables.push(Table {
                workload: w.clone(),
                rows,
            });
        }
        let memory_skips = manifest
            .skips
            .iter()
            .filter(|s| s.0.starts_with("memory-"))
            .cloned()
            .collect();
        let mut report = Report {
            tables,
            memory: manifest.memory.clone(),
            memory_skips,
            verdicts: Vec::new(),
        };
        report.verdicts = report.check(&engines);
        report
    }

    fn table(&self, workload: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.workload.id == workload)
    }

    fn check(&self, engines: &[String]) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for goal in GOALS {
            let row = |workload: &str, engine: &str| {
                self.table(workload)
                    .and_then(|t| t.rows.iter().find(|r| r.engine == engine))
                    .cloned()
            };
            match goal.measure {
                Measure::Ratio(workload, None) => {
                    for engine in engines {
                        if let Some(r) = row(workload, engine).filter(|r| r.skipped.is_none()) {
                            verdicts.push(Verdict {
                                goal: *goal,
                                engine: engine.clone(),
                                value: r.ratio(),
                            });
                        }
                    }
                }
                Measure::Ratio(workload, Some(engine)) => verdicts.push(Verdict {
                    goal: *goal,
                    engine: engine.into(),
                    value: row(workload, engine).and_then(|r| r.ratio()),
                }),
                Measure::Time(workload, engine) => verdicts.push(Verdict {
                    goal: *goal,
                    engine: engine.into(),
                    value: row(workload, engine).and_then(|r| r.ours),
                }),
                Measure::Memory(engine, plugin) => verdicts.push(Verdict {
                    goal: *goal,
                    engine: engine.into(),
                    value: self
                        .memory
                        .iter()
                        .find(|m| m.0 == engine && m.1 == plugin)
                        .map(|m| m.2),
                }),
            }
        }
        verdicts
    }

    /// The report as Markdown; `header` goes under the title (how the run was made).
    pub fn markdown(&self, header: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark report\n\n{header}\n");
        out.push_str(
            "Times are criterion's median per iteration, divided by the operations per iteration \
             where the unit says so. `ratio` is our layer over the workload's baseline on the \
             same engine; `vs wasmtime` and `vs native` are our layer on this engine over our \
             layer on Wasmtime and on the Null VM (native code) for the same workload. All from \
             this one run.\n\n",
        );
        out.push_str("## Goals\n\n| goal | engine | measured | at most | result |\n| --- | --- | --- | --- | --- |\n");
        for v in &self.verdicts {
            let measured = v.value.map_or("—".to_string(), |x| v.show(x));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                v.goal.text,
                v.engine,
                measured,
                v.show(v.goal.max),
                v.result()
            );
        }
        for t in &self.tables {
            let w = &t.workload;
            let _ = writeln!(
                out,
                "\n## {}\n\n{} ({}). Baseline: {}.\n",
                w.id, w.title, w.unit, w.baseline
            );
            out.push_str("| engine | time | baseline | ratio | vs wasmtime | vs native |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
            let mut skipped = Vec::new();
            for r in &t.rows {
                if let Some(reason) = &r.skipped {
                    skipped.push(format!("{}: {reason}", r.engine));
                    continue;
                }
                let time = |t: Option<f64>| t.map_or("—".to_string(), format_ns);
                let ratio = |x: Option<f64>| x.map_or("—".to_string(), |x| format!("{x:.2}x"));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.engine,
                    time(r.ours),
                    time(r.baseline),
                    ratio(r.ratio()),
                    ratio(r.vs_wasmtime),
                    ratio(r.vs_native)
                );
            }
            for s in skipped {
                let _ = writeln!(out, "\nSkipped on {s}.");
            }
        }
        if !self.memory.is_empty() || !self.memory_skips.is_empty() {
            out.push_str("\n## memory\n\nResident memory (VmRSS) added per extra worker VM, each worker after one empty stream.\n\n| engine | plugin | per VM | VMs made |\n| --- | --- | ---: | ---: |\n");
            for (engine, plugin, bytes, vms) in &self.memory {
                let plugin = if plugin == "1mib" {
                    "1 MiB (generated)"
                } else {
                    "empty"
                };
                let _ = writeln!(
                    out,
                    "| {engine} | {plugin} | {} | {vms} |",
                    format_bytes(*bytes)
                );
            }
            for (what, engine, reason) in &self.memory_skips {
                let _ = writeln!(out, "\nSkipped `{what}` on {engine}: {reason}.");
            }
        }
        out
    }

    /// The timings as an SVG bar chart: one panel per workload, a bar per engine for our layer
    /// and a lighter one for its baseline, each panel on its own linear scale.
    pub fn svg(&self) -> String {
        const WIDTH: f64 = 900.0;
        const LABEL: f64 = 150.0;
        const BAR: f64 = 14.0;
        const BAR_AREA: f64 = WIDTH - LABEL - 130.0;
        let mut body = String::new();
        let mut y = 30.0;
        for t in &self.tables {
            let rows: Vec<&Row> = t.rows.iter().filter(|r| r.ours.is_some()).collect();
            if rows.is_empty() {
                continue;
            }
            let max = rows
                .iter()
                .flat_map(|r| [r.ours, r.baseline])
                .flatten()
                .fold(0.0f64, f64::max)
                .max(f64::MIN_POSITIVE);
            let _ = writeln!(
                body,
                r#"<text x="10" y="{:.0}" font-weight="bold">{} ({})</text>"#,
                y + 12.0,
                escape(&t.workload.id),
                escape(&t.workload.unit)
            );
            y += 20.0;
            for r in rows {
                let _ = writeln!(
                    body,
                    r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text>"#,
                    LABEL - 8.0,
                    y + BAR + 2.0,
                    escape(&r.engine)
                );
                for (value, class, dy) in [(r.ours, "ours", 0.0), (r.baseline, "base", BAR)] {
                    let Some(value) = value else { continue };
                    let w = (value / max * BAR_AREA).max(1.0);
                    let _ = writeln!(
                        body,
                        r#"<rect class="{class}" x="{LABEL:.0}" y="{:.1}" width="{w:.1}" height="{:.0}"/><text x="{:.1}" y="{:.1}" class="v">{}</text>"#,
                        y + dy,
                        BAR - 2.0,
                        LABEL + w + 4.0,
                        y + dy + BAR - 4.0,
                        format_ns(value)
                    );
                }
                y += 2.0 * BAR + 6.0;
            }
            y += 10.0;
        }
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{:.0}" font-family="sans-serif" font-size="12">
<style>.ours{{fill:#3b6ea8}} .base{{fill:#b9cde5}} .v{{fill:#333;font-size:11px}}</style>
<rect width="100%" height="100%" fill="white"/>
<rect class="ours" x="10" y="6" width="12" height="10"/><text x="26" y="15">our layer</text>
<rect class="base" x="110" y="6" width="12" height="10"/><text x="126" y="15">baseline</text>
{body}</svg>
"##,
            y + 10.0
        )
    }
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A duration in nanoseconds with three significant digits and a fitting unit.
pub fn format_ns(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {unit}", three_digits(value))
}

/// A byte count in KiB or MiB (bytes when small; negative when memory went down).
pub fn format_bytes(bytes: f64) -> String {
    if bytes.abs() < 1024.0 {
        format!("{bytes:.0} B")
    } else if bytes.abs() < 1024.0 * 1024.0 {
        format!("{} KiB", three_digits(bytes / 1024.0))
    } else {
        format!("{} MiB", three_digits(bytes / 1024.0 / 1024.0))
    }
}

fn three_digits(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "\
workload\tlifecycle\tEmpty stream lifecycle\tper stream\traw calls
ours\tlifecycle\twasmtime\tlifecycle/wasmtime/ours\t1
baseline\tlifecycle\twasmtime\tlifecycle/wasmtime/baseline\t1
ours\tlifecycle\tnull\tlifecycle/null/ours\t1
baseline\tlifecycle\tnull\tlifecycle/null/baseline\t1
workload\theader-lookup\tOne lookup\tper lookup\ta raw host call
ours\theader-lookup\twasmtime\theader-lookup/wasmtime/ours\t100
baseline\theader-lookup\twasmtime\theader-lookup/wasmtime/baseline\t100
skip\theader-lookup\tnull\tno reason at all
workload\tclone\tClone\tper VM\traw instantiate
ours\tclone\twasmtime\tclone/wasmtime/ours\t1
baseline\tclone\twasmtime\tclone/wasmtime/baseline\t1
memory\twasmtime\t1mib\t1572864\t32
skip\tmemory-1mib\tnull\tnative code
";

    fn estimates() -> HashMap<String, f64> {
        [
            ("lifecycle/wasmtime/ours", 1200.0),
            ("lifecycle/wasmtime/baseline", 1000.0),
            ("lifecycle/null/ours", 600.0),
            ("lifecycle/null/baseline", 10.0),
            ("header-lookup/wasmtime/ours", 25_000.0),
            ("header-lookup/wasmtime/baseline", 5_000.0),
            ("clone/wasmtime/ours", 12_345.0),
            ("clone/wasmtime/baseline", 10_000.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn report() -> Report {
        let mut manifest = Manifest::default();
        manifest.add(MANIFEST).unwrap();
        Report::new(&manifest, &estimates())
    }

    #[test]
    fn tables_join_the_manifest_with_the_estimates() {
        let report = report();
        let lifecycle = &report.tables[0];
        assert_eq!(lifecycle.workload.id, "lifecycle");
        assert_eq!(
            lifecycle.rows[0],
            Row {
                engine: "wasmtime".into(),
                ours: Some(1200.0),
                baseline: Some(1000.0),
                vs_wasmtime: Some(1.0),
                vs_native: Some(2.0),
                skipped: None
            }
        );
        assert_eq!(lifecycle.rows[0].ratio(), Some(1.2));
        let lookup = &report.tables[1];
        assert_eq!(lookup.rows[0].ours, Some(250.0), "divided per lookup");
        assert_eq!(lookup.rows[1].skipped.as_deref(), Some("no reason at all"));
    }

    #[test]
    fn goals_pass_miss_or_go_unmeasured() {
        let report = report();
        let results: Vec<(&str, &str, &str)> = report
            .verdicts
            .iter()
            .map(|v| (v.goal.text, v.engine.as_str(), v.result()))
            .collect();
        assert_eq!(
            results,
            [
                (GOALS[0].text, "wasmtime", "pass"),
                (GOALS[1].text, "wasmer", "not measured"),
                (GOALS[2].text, "wasmer-singlepass", "not measured"),
                (GOALS[3].text, "null", "miss"),
                (GOALS[4].text, "wasmtime", "miss"),
                (GOALS[5].text, "wasmtime", "not measured"),
                (GOALS[6].text, "wasmtime", "miss"),
                (GOALS[7].text, "wasmtime", "not measured"),
                (GOALS[8].text, "wasmtime", "pass"),
            ]
        );
    }

    #[test]
    fn markdown_has_a_table_per_workload_and_the_goals() {
        let md = report().markdown("Quick run.");
        assert!(md.starts_with("# Benchmark report\n\nQuick run.\n"), "{md}");
        assert!(md.contains("| empty stream lifecycle on Wasmtime at most 1.5x the raw engine | wasmtime | 1.20x | 1.50x | pass |"), "{md}");
        assert!(
            md.contains(
                "| a Wasmtime VM clone at most 1.2x the raw engine's instance plus root callbacks | wasmtime | 1.23x | 1.20x | miss |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| wasmtime | 1.20 µs | 1.00 µs | 1.20x | 1.00x | 2.00x |"),
            "{md}"
        );
        assert!(
            md.contains("| null | 600 ns | 10.0 ns | 60.00x | 0.50x | 1.00x |"),
            "{md}"
        );
        assert!(
            md.contains("| wasmtime | 250 ns | 50.0 ns | 5.00x | 1.00x | — |"),
            "{md}"
        );
        assert!(md.contains("Skipped on null: no reason at all."), "{md}");
        assert!(
            md.contains("| wasmtime | 12.3 µs | 10.0 µs | 1.23x | 1.00x | — |"),
            "{md}"
        );
        assert!(
            md.contains("| wasmtime | 1 MiB (generated) | 1.50 MiB | 32 |"),
            "{md}"
        );
        assert!(
            md.contains("Skipped `memory-1mib` on null: native code."),
            "{md}"
        );
    }

    #[test]
    fn the_chart_has_a_bar_per_measurement() {
        let svg = report().svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        // Our layer: lifecycle x2, lookup x1, clone x1; baselines: lifecycle x2, lookup x1, clone x1.
        assert_eq!(svg.matches("<rect class=\"ours\" x=\"150\"").count(), 4);
        assert_eq!(svg.matches("<rect class=\"base\" x=\"150\"").count(), 4);
        assert!(svg.contains(">1.20 µs</text>"));
    }

    #[test]
    fn bad_manifest_lines_name_themselves() {
        let mut manifest = Manifest::default();
        let error = manifest.add("ours\tx\twasmtime\tid\tlots\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "manifest line 1: cannot read `ours\tx\twasmtime\tid\tlots`"
        );
        assert!(manifest.add("frobnicate\n").is_err());
    }

    #[test]
    fn units_scale() {
        assert_eq!(format_ns(12.345), "12.3 ns");
        assert_eq!(format_ns(1234.5), "1.23 µs");
        assert_eq!(format_ns(123_456_789.0), "123 ms");
        assert_eq!(format_ns(2.5e9), "2.50 s");
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(-2048.0), "-2.00 KiB");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0), "3.00 MiB");
    }

    #[test]
    fn estimates_are_read_from_criterion_directories_of_this_run() {
        let dir = std::env::temp_dir().join(format!("xtask-report-{}", std::process::id()));
        let new = dir.join("lifecycle_wasmtime").join("ours").join("new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"lifecycle/wasmtime","function_id":"ours","full_id":"lifecycle/wasmtime/ours"}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"median":{"point_estimate":1234.5}}"#,
        )
        .unwrap();
        // A benchmark whose estimates are not JSON, or lack the median, is left out.
        for (name, estimates) in [("broken", "{\"median\": "), ("no_median", "{\"mean\": {\"point_estimate\": 1}}")] {
            let new = dir.join(name).join("ours").join("new");
            std::fs::create_dir_all(&new).unwrap();
            let benchmark = format!(r#"{{"full_id":"{name}/ours"}}"#);
            std::fs::write(new.join("benchmark.json"), benchmark).unwrap();
            std::fs::write(new.join("estimates.json"), estimates).unwrap();
        }
        let found = read_estimates(&dir, SystemTime::UNIX_EPOCH);
        assert_eq!(found.get("lifecycle/wasmtime/ours"), Some(&1234.5));
        assert_eq!(found.len(), 1, "{found:?}");
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(read_estimates(&dir, later).is_empty(), "older than the run");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
