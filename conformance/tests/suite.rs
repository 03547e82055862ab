//! The conformance suite as a test: every case on every engine built in must pass, and the
//! golden transcripts together must exercise every host function and callback of the ABI
//! table.

use proxy_wasm_conformance::coverage::Coverage;
use proxy_wasm_conformance::runner::{self, EngineRun};
use proxy_wasm_host::abi::Callback;
use proxy_wasm_conformance::{case, cases_dir, report};
use proxy_wasm_harness::engines;

#[test]
fn every_case_passes_on_every_engine_built_in() {
    let cases = case::load_all(&cases_dir()).unwrap_or_else(|e| panic!("{e}"));
    let engines: Vec<EngineRun> = engines::built_in()
        .into_iter()
        .map(|name| EngineRun::new(engines::engine(name).unwrap_or_else(|e| panic!("{e}"))))
        .collect();
    assert!(!engines.is_empty(), "no engine is built in");
    let matrix = report::run(&engines, &cases, false, &mut std::io::stderr());
    let failures: Vec<String> =
        matrix.failures().iter().map(|(case, engine, why)| format!("{case} on {engine}:\n{why}")).collect();
    assert!(failures.is_empty(), "{}\n\n{}", matrix.table(), failures.join("\n\n"));
}

#[test]
fn the_golden_transcripts_exercise_every_host_function_and_callback() {
    let cases = case::load_all(&cases_dir()).unwrap_or_else(|e| panic!("{e}"));
    // Which allocator a guest exports, read from its Wasm build on the first Wasm engine.
    let wasm = engines::built_in()
        .into_iter()
        .map(|n| engines::engine(n).unwrap())
        .find(|e| e.capabilities().sandboxed)
        .expect("a Wasm engine is built in");
    let mut coverage = Coverage::default();
    for case in &cases {
        let path = case.transcript_path();
        let transcript = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} has no golden transcript ({}): {e}", case.name, path.display()));
        let allocator = transcript.contains("alloc(").then(|| {
            let bytes = runner::guest_bytes(&case.guest, true).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let module = wasm.compile(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            if module.exports().iter().any(|e| e.name == "malloc") {
                Callback::Malloc
            } else {
                Callback::OnMemoryAllocate
            }
        });
        coverage.add(&transcript, allocator);
    }
    let missing = coverage.missing();
    assert!(missing.is_empty(), "no case exercises:\n  {}", missing.join("\n  "));
}

/// In the golden transcripts of the security cases, the secret held by hidden headers appears in
/// the steps (what the proxy received) and in the final state (what it forwards), never in what
/// a host call handed the plugin (the indented lines). The golden transcript is what every
/// engine must produce, so this holds on every engine.
#[test]
fn a_hidden_header_never_reaches_the_plugin_in_the_security_cases() {
    let dir = cases_dir().join("security");
    let transcript = std::fs::read_to_string(dir.join("hidden_headers.transcript")).unwrap();
    let (calls, final_state) = transcript.split_once("== final ==").expect("a final section");
    assert!(final_state.contains("\"authorization\": \"Bearer s3cret\""), "the proxy forwards the hidden header unchanged");
    assert!(calls.contains("> request_headers") && calls.contains("s3cret"), "the steps hold the secret");
    for line in calls.lines().filter(|l| l.starts_with(' ')) {
        assert!(!line.contains("s3cret"), "a host call handed the plugin a hidden value: {line}");
    }
}
