//! The empty stream lifecycle (create context, request headers, done, log, delete) through our
//! layer on every engine built in, beside the same calls without it: raw engine calls of the same
//! exports with the same arguments, or for the Null VM direct calls of the native plugin's
//! functions. Then an ephemeral VM per stream beside a persistent one, and what a CPU deadline
//! costs per call.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use abi::{AbiVersion, Callback};
use criterion::Criterion;
use proxy_wasm_benches::cases::{self, Pair};
use proxy_wasm_benches::run::{self, bench, Manifest};
use proxy_wasm_benches::EMPTY_PLUGIN_WAT;
use proxy_wasm_host::engine::Watchdog;
use proxy_wasm_host::{DefaultEmbedder, Engine, Services, VmHost, VmHostConfig};

fn lifecycle(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "lifecycle",
        "Empty stream lifecycle (context create, request headers, done, log, delete)",
        "per stream",
        "the same five export calls on the raw engine; for the Null VM direct calls of the native functions",
    );
    for name in run::engines() {
        let mut group = c.benchmark_group(format!("lifecycle/{name}"));
        let Pair { mut ours, baseline } = cases::lifecycle(name);
        bench(&mut group, "ours", &mut *ours);
        m.ours("lifecycle", name, &format!("lifecycle/{name}/ours"), 1);
        match baseline {
            Some(mut baseline) => {
                bench(&mut group, "baseline", &mut *baseline);
                m.baseline("lifecycle", name, &format!("lifecycle/{name}/baseline"), 1);
            }
            None => m.skip("lifecycle", name, "no raw baseline for this engine yet (benches/src/raw.rs)"),
        }
        group.finish();
    }
}

/// One stream of an `EPHEMERAL` plugin (a fresh VM for it, dropped after), beside the raw
/// engine doing the same unavoidable work: a new instance, the three root callbacks, the
/// stream's five exports looked up and called.
fn ephemeral(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "ephemeral",
        "Ephemeral VM per stream: one empty stream of an EPHEMERAL plugin (a fresh VM: instance, root context, vm_start, configure; dropped after the stream)",
        "per stream",
        "the raw engine: a new store and instance, the three root callbacks, then the stream's five exports looked up and called",
    );
    for name in run::engines() {
        let mut group = c.benchmark_group(format!("ephemeral/{name}"));
        let Pair { mut ours, baseline } = cases::ephemeral(name);
        bench(&mut group, "ours", &mut *ours);
        m.ours("ephemeral", name, &format!("ephemeral/{name}/ours"), 1);
        // The Null VM has no baseline (nothing to instantiate): its row shows our time alone.
        if let Some(mut baseline) = baseline {
            bench(&mut group, "baseline", &mut *baseline);
            m.baseline("ephemeral", name, &format!("ephemeral/{name}/baseline"), 1);
        }
        group.finish();
    }
}

/// One empty callback (`proxy_on_done`) through `Instance::call`, with a CPU deadline (that never
/// fires) beside without one: what arming and disarming the deadline costs per call.
fn deadline(c: &mut Criterion, m: &Manifest) {
    m.workload(
        "deadline",
        "One empty callback through Instance::call with a CPU deadline armed",
        "per call",
        "the same call without a deadline",
    );
    for name in run::engines() {
        let engine: Arc<dyn Engine> = run::engine(name);
        if !engine.capabilities().interrupt {
            m.skip("deadline", name, "the engine has no CPU deadline");
            continue;
        }
        let mut group = c.benchmark_group(format!("deadline/{name}"));
        let module = engine.compile(&wat::parse_str(EMPTY_PLUGIN_WAT).unwrap()).unwrap();
        let config = VmHostConfig::new("vm");
        let host = VmHost::new(config, AbiVersion::V021, Arc::new(DefaultEmbedder), Services::new());
        let mut vm = module.instantiate(host).unwrap();
        // What `Vm` does around every call when the VM has a CPU deadline: arm the host's
        // watchdog, call, disarm.
        let slot = Watchdog::global().slot(vm.interrupt_handle().expect("the engine can interrupt"), Duration::from_secs(1));
        bench(&mut group, "ours", &mut || {
            let armed = slot.arm().unwrap();
            vm.call(Callback::OnDone, &[1]).unwrap();
            armed.disarm();
        });
        bench(&mut group, "baseline", &mut || {
            vm.call(Callback::OnDone, &[1]).unwrap();
        });
        m.ours("deadline", name, &format!("deadline/{name}/ours"), 1);
        m.baseline("deadline", name, &format!("deadline/{name}/baseline"), 1);
        group.finish();
    }
}

fn main() {
    let mut c = run::criterion();
    let m = Manifest::create("lifecycle");
    lifecycle(&mut c, &m);
    ephemeral(&mut c, &m);
    deadline(&mut c, &m);
    c.final_summary();
}
