//! Runs one per-call workload a given number of times, for an instruction counter: `cargo xtask
//! bench --check` runs this under `valgrind --tool=callgrind`, collecting only inside
//! [`measured`], and divides the count by the iterations.
//!
//! ```text
//! pwcount <workload> <engine> <ours|baseline> <iterations>
//! ```
//!
//! Workloads: `lifecycle`, `header-lookup`, `clone` and `ephemeral` (`proxy_wasm_benches::cases`). Before
//! [`measured`] the workload runs a few times untimed, so one-time work (lazy statics, first
//! allocations, the engine's first call) stays out of the count. Exit code 2 for a bad command
//! line, 3 when the engine has no baseline for the workload.

use std::process::ExitCode;

use proxy_wasm_benches::cases;
use proxy_wasm_benches::raw::Iteration;

/// Iterations run before counting starts.
const WARM_UP: u32 = 16;

/// The counted part: `iterations` runs of `iteration`. Its symbol name is what the counter
/// collects in (`--toggle-collect=*pwcount*measured*`), so it must stay a real function.
#[inline(never)]
fn measured(iteration: &mut dyn FnMut(), iterations: u32) {
    for _ in 0..iterations {
        iteration();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, engine, side, iterations] = &args[..] else {
        eprintln!("usage: pwcount <lifecycle|header-lookup|clone|ephemeral> <engine> <ours|baseline> <iterations>");
        return ExitCode::from(2);
    };
    let Ok(iterations) = iterations.parse::<u32>() else {
        eprintln!("pwcount: iterations must be a whole number, not `{iterations}`");
        return ExitCode::from(2);
    };
    if !proxy_wasm_benches::run::engines().contains(&engine.as_str()) {
        eprintln!("pwcount: engine `{engine}` is not built in (built in: {:?})", proxy_wasm_benches::run::engines());
        return ExitCode::from(2);
    }
    let pair = match workload.as_str() {
        "lifecycle" => cases::lifecycle(engine),
        "header-lookup" => cases::lookup(engine),
        "clone" => cases::clone(engine),
        "ephemeral" => cases::ephemeral(engine),
        other => {
            eprintln!("pwcount: no workload `{other}` (lifecycle, header-lookup, clone, ephemeral)");
            return ExitCode::from(2);
        }
    };
    let mut iteration: Iteration = match (side.as_str(), pair.baseline) {
        ("ours", _) => pair.ours,
        ("baseline", Some(baseline)) => baseline,
        ("baseline", None) => {
            eprintln!("pwcount: {engine} has no baseline for {workload}");
            return ExitCode::from(3);
        }
        (other, _) => {
            eprintln!("pwcount: side must be `ours` or `baseline`, not `{other}`");
            return ExitCode::from(2);
        }
    };
    for _ in 0..WARM_UP {
        iteration();
    }
    measured(&mut *iteration, iterations);
    ExitCode::SUCCESS
}
