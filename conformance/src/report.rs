//! The case-by-engine matrix: running the suite, and the matrix as text, Markdown and JSON.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::case::Case;
use crate::runner::{EngineRun, Verdict};

/// The results of a run: one verdict per case and engine.
#[derive(Clone, Debug, Default)]
pub struct Matrix {
    /// The engines, in column order.
    pub engines: Vec<String>,
    /// Per case: its name, its description and one verdict per engine.
    pub rows: Vec<(String, String, Vec<Verdict>)>,
}

impl Matrix {
    /// Every failure: (case, engine, why).
    pub fn failures(&self) -> Vec<(&str, &str, &str)> {
        let mut out = Vec::new();
        for (case, _, verdicts) in &self.rows {
            for (engine, v) in self.engines.iter().zip(verdicts) {
                if let Verdict::Fail(why) = v {
                    out.push((case.as_str(), engine.as_str(), why.as_str()));
                }
            }
        }
        out
    }

    /// (passed, failed, unsupported) over every cell.
    pub fn counts(&self) -> (usize, usize, usize) {
        let all = self.rows.iter().flat_map(|(_, _, v)| v);
        all.fold((0, 0, 0), |(p, f, u), v| match v {
            Verdict::Pass => (p + 1, f, u),
            Verdict::Fail(_) => (p, f + 1, u),
            Verdict::Unsupported(_) => (p, f, u + 1),
        })
    }

    /// The matrix as a text table: `pass`, `FAIL` or `n/a` per cell.
    pub fn table(&self) -> String {
        let width = self.rows.iter().map(|(c, _, _)| c.len()).max().unwrap_or(4).max(4);
        let mut out = format!("{:width$}", "case");
        for e in &self.engines {
            let _ = write!(out, "  {e:>w$}", w = e.len().max(4));
        }
        out.push('\n');
        for (case, _, verdicts) in &self.rows {
            let _ = write!(out, "{case:width$}");
            for (e, v) in self.engines.iter().zip(verdicts) {
                let _ = write!(out, "  {:>w$}", cell(v), w = e.len().max(4));
            }
            out.push('\n');
        }
        let (p, f, u) = self.counts();
        let _ = writeln!(out, "{p} passed, {f} failed, {u} unsupported ({} cases x {} engines)", self.rows.len(), self.engines.len());
        out
    }

    /// The report in Markdown: the matrix, then every failure and every unsupported cell with
    /// its reason.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# Conformance report\n\n");
        let (p, f, u) = self.counts();
        let _ = writeln!(out, "{p} passed, {f} failed, {u} unsupported: {} cases on {}.\n", self.rows.len(), self.engines.join(", "));
        let _ = writeln!(out, "| case | {} |", self.engines.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(self.engines.len()));
        for (case, description, verdicts) in &self.rows {
            let cells: Vec<&str> = verdicts.iter().map(cell).collect();
            let _ = writeln!(out, "| `{case}`: {} | {} |", description.replace('|', "\\|"), cells.join(" | "));
        }
        let failures = self.failures();
        if !failures.is_empty() {
            out.push_str("\n## Failures\n");
            for (case, engine, why) in failures {
                let _ = writeln!(out, "\n### `{case}` on {engine}\n\n```\n{why}\n```");
            }
        }
        let mut unsupported = Vec::new();
        for (case, _, verdicts) in &self.rows {
            for (engine, v) in self.engines.iter().zip(verdicts) {
                if let Verdict::Unsupported(why) = v {
                    unsupported.push(format!("- `{case}` on {engine}: {why}"));
                }
            }
        }
        if !unsupported.is_empty() {
            let _ = write!(out, "\n## Unsupported\n\n{}\n", unsupported.join("\n"));
        }
        out
    }

    /// The report as JSON: `engines`, `summary` and per case its `name`, `description` and
    /// `results` (engine to `{verdict, reason}`).
    pub fn json(&self) -> serde_json::Value {
        let (p, f, u) = self.counts();
        let cases: Vec<_> = self
            .rows
            .iter()
            .map(|(case, description, verdicts)| {
                let results: serde_json::Map<String, serde_json::Value> = self
                    .engines
                    .iter()
                    .zip(verdicts)
                    .map(|(e, v)| {
                        let (verdict, reason) = match v {
                            Verdict::Pass => ("pass", None),
                            Verdict::Fail(why) => ("fail", Some(why.as_str())),
                            Verdict::Unsupported(why) => ("unsupported", Some(why.as_str())),
                        };
                        (e.clone(), json!({"verdict": verdict, "reason": reason}))
                    })
                    .collect();
                json!({"name": case, "description": description, "results": results})
            })
            .collect();
        json!({
            "engines": self.engines,
            "summary": {"passed": p, "failed": f, "unsupported": u},
            "cases": cases,
        })
    }

    /// Writes `report.md` and `report.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let md = dir.join("report.md");
        std::fs::write(&md, self.markdown()).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
        let js = dir.join("report.json");
        let text = serde_json::to_string_pretty(&self.json()).unwrap_or_default();
        std::fs::write(&js, text).map_err(|e| format!("cannot write {}: {e}", js.display()))
    }
}

fn cell(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "FAIL",
        Verdict::Unsupported(_) => "n/a",
    }
}

/// Runs every case on every engine, writing progress to `progress` (a line per engine, a mark
/// per case: `.` pass, `F` fail, `-` unsupported). With `bless`, a case's golden transcript is
/// (re)written from the first engine that runs it, and the other engines are judged against it.
pub fn run(engines: &[EngineRun], cases: &[Case], bless: bool, progress: &mut dyn Write) -> Matrix {
    let mut matrix = Matrix {
        engines: engines.iter().map(|e| e.name().to_string()).collect(),
        rows: cases.iter().map(|c| (c.name.clone(), c.description.clone(), Vec::new())).collect(),
    };
    for engine in engines {
        let started = Instant::now();
        let _ = write!(progress, "{:>18} ", engine.name());
        let _ = progress.flush();
        for (i, case) in cases.iter().enumerate() {
            let path = case.transcript_path();
            let golden = std::fs::read_to_string(&path).ok();
            let mut result = engine.run(case, golden.as_deref());
            if bless && !matches!(result.verdict, Verdict::Unsupported(_)) && golden.as_deref() != Some(&result.transcript) {
                let first = matrix.rows[i].2.iter().all(|v| matches!(v, Verdict::Unsupported(_)));
                if first {
                    if let Err(e) = std::fs::write(&path, &result.transcript) {
                        result.verdict = Verdict::Fail(format!("cannot write {}: {e}", path.display()));
                    } else {
                        result = engine.run(case, Some(&result.transcript));
                    }
                }
            }
            let mark = match result.verdict {
                Verdict::Pass => '.',
                Verdict::Fail(_) => 'F',
                Verdict::Unsupported(_) => '-',
            };
            let _ = write!(progress, "{mark}");
            let _ = progress.flush();
            matrix.rows[i].2.push(result.verdict);
        }
        let done: Vec<&Verdict> = matrix.rows.iter().filter_map(|(_, _, v)| v.last()).collect();
        let failed = done.iter().filter(|v| matches!(v, Verdict::Fail(_))).count();
        let _ = writeln!(progress, " {} cases, {failed} failed, {:.1}s", cases.len(), started.elapsed().as_secs_f64());
    }
    matrix
}
