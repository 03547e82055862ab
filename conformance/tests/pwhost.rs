//! `pwhost` in process, through `pwhost::cli::main(args, out, err)`: `run` on the unmodified
//! SDK plugin (text and `--json`), `--config`, a trapping plugin, `inspect`, every kind of bad
//! input (one line on stderr, exit code 2), and the example exchanges and README commands,
//! so that the documentation cannot rot.
//!
//! The examples run on every Wasm engine built in; the other `run` tests on the first, or on the
//! one `PWHOST_TEST_ENGINE` names. Files the tests write go under `target/pwhost-tests/<test>/`.

use std::path::PathBuf;

use proxy_wasm_conformance::Target;
use proxy_wasm_harness::engines;
use serde_json::{json, Value};

/// What a `pwhost` command line did.
#[derive(Debug)]
struct Ran {
    code: u8,
    out: String,
    err: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.out))
    }

    /// The single stderr line; fails unless there is exactly one.
    fn err_line(&self) -> &str {
        let lines: Vec<&str> = self.err.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{}", self.err);
        assert!(self.err.ends_with('\n'), "the line ends with a newline: {:?}", self.err);
        lines[0]
    }
}

fn pwhost(args: &[&str]) -> Ran {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (out, err) = (pwhost::cli::Capture::new(), pwhost::cli::Capture::new());
    let code = pwhost::cli::main(&args, out.clone(), err.clone());
    Ran { code, out: out.text(), err: err.text() }
}

/// The Wasm engines built in (the Null VM runs native code, not these `.wasm` files).
fn wasm_engines() -> Vec<&'static str> {
    let wasm: Vec<&str> = engines::built_in().into_iter().filter(|e| *e != "null").collect();
    assert!(!wasm.is_empty(), "no Wasm engine is built in");
    wasm
}

/// The engine the `run` tests use: `PWHOST_TEST_ENGINE` if set (one of the Wasm engines built
/// in), else the first Wasm engine built in.
fn engine() -> &'static str {
    let engines = wasm_engines();
    match std::env::var("PWHOST_TEST_ENGINE") {
        Ok(wanted) if !wanted.is_empty() => engines
            .iter()
            .copied()
            .find(|e| *e == wanted)
            .unwrap_or_else(|| panic!("PWHOST_TEST_ENGINE={wanted}: not a Wasm engine built in ({engines:?})")),
        _ => engines[0],
    }
}

fn root() -> PathBuf {
    guest_plugins::workspace_root()
}

/// The SDK plugin (`conformance/plugins/sdk-e2e`), built for wasm32 if needed.
fn sdk() -> String {
    let path = guest_plugins::path(Target::Wasm32, "sdk_e2e").unwrap_or_else(|e| panic!("{e}"));
    path.to_string_lossy().into_owned()
}

/// Writes `contents` to `target/pwhost-tests/<test>/<name>` and returns its path.
fn file(test: &str, name: &str, contents: impl AsRef<[u8]>) -> String {
    let dir = root().join("target").join("pwhost-tests").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

const HEADERS: &str = r#"
plugin: {name: headers, configuration: headers}
steps:
  - request_headers: {":path": /a, ":method": GET, x-a: "1", x-remove: gone}
  - response_headers: {":status": "200"}
"#;

/// A `[name, value]` pair of a JSON header list.
fn has_pair(list: &Value, name: &str, value: &str) -> bool {
    list.as_array().expect("a list of pairs").iter().any(|p| p == &json!([name, value]))
}

#[test]
fn run_prints_the_transcript_then_the_final_state() {
    let exchange = file("run_text", "headers.yaml", HEADERS);
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.err, "");
    let (transcript, summary) = r.out.split_once("\n---\n").unwrap_or_else(|| panic!("no `---` line:\n{}", r.out));
    // The transcript: the step, the callback, each host call with its status.
    for line in [
        "> request_headers {\":path\": \"/a\", \":method\": \"GET\", \"x-a\": \"1\", \"x-remove\": \"gone\"} end_of_stream",
        "proxy_on_request_headers(context_id=2, num_headers=4, end_of_stream=true)",
        "  proxy_add_header_map_value(map_type=HTTP_REQUEST_HEADERS, key=\"x-added\", value=\"1\") -> OK",
        "  proxy_replace_header_map_value(map_type=HTTP_REQUEST_HEADERS, key=\"x-a\", value=\"changed\") -> OK",
        "  proxy_remove_header_map_value(map_type=HTTP_REQUEST_HEADERS, key=\"x-remove\") -> OK",
        "  proxy_log(level=INFO, message=\"headers: :path=/a x-a=1\") -> OK",
        "proxy_on_delete(context_id=2)",
    ] {
        assert!(transcript.lines().any(|l| l == line), "the transcript lacks `{line}`:\n{transcript}");
    }
    // The final state: the rewritten maps, and nothing about parts that stayed empty. A
    // replaced header moves to the end (Envoy's HeaderMapImpl::setCopy removes, then adds).
    assert_eq!(
        summary,
        "request headers:   {\":path\": \"/a\", \":method\": \"GET\", \"x-added\": \"1\", \"x-a\": \"changed\"}\n\
         response headers:  {\":status\": \"200\", \"x-response\": \"yes\"}\n"
    );
}

#[test]
fn run_json_reports_every_part_of_the_outcome() {
    let exchange = file(
        "run_json",
        "authz.yaml",
        r#"
plugin: {name: authz, configuration: callout}
upstreams: [auth]
steps:
  - request_headers: {":path": /private, ":method": GET}
  - http_call_response: {headers: {":status": "403"}, body: no}
"#,
    );
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.err, "");
    let v = r.json();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "actions", "callbacks", "callouts", "connection", "error", "foreign", "grpc_calls", "local_reply", "logs",
            "metrics", "request", "response", "security", "stats", "transcript", "trap"
        ]
    );
    assert_eq!(v["foreign"], json!([]), "the plugin called no proxy-specific foreign function");
    assert!(has_pair(&v["request"]["headers"], ":path", "/private"), "{}", v["request"]);
    assert_eq!(v["request"]["body"], "");
    assert_eq!(v["response"]["headers"], json!([]), "the upstream response never came");
    assert_eq!(v["connection"], json!({"downstream": "", "upstream": ""}));
    assert_eq!(
        v["local_reply"],
        json!({"status": 403, "details": "", "headers": [["x-auth", "denied"]], "body": "forbidden", "grpc_status": null})
    );
    let callouts = v["callouts"].as_array().unwrap();
    assert_eq!(callouts.len(), 1);
    assert_eq!(callouts[0]["upstream"], "auth");
    assert_eq!(callouts[0]["timeout_ms"], 1000);
    assert!(has_pair(&callouts[0]["headers"], ":path", "/check"), "{}", callouts[0]);
    let logs: Vec<&str> = v["logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert!(logs.contains(&"callout: denied, sending 403"), "{logs:?}");
    assert_eq!(v["logs"][0]["level"], "INFO");
    assert_eq!(v["logs"][0]["plugin"], "authz");
    assert_eq!(v["metrics"], json!({}));
    assert_eq!(v["trap"], Value::Null);
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["actions"], json!([{"step": 0, "action": "PAUSE"}]));
    let answer = v["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["callback"] == "proxy_on_http_call_response")
        .expect("the callout's answer reached the plugin");
    // The answer comes to the root context that owns the call (Envoy's), with Envoy's first
    // HTTP call id.
    assert_eq!(answer["context_id"], 1);
    assert_eq!(answer["args"], json!([4, 1, 2, 0]), "call 4: one header, two body bytes, no trailers");
    let transcript = v["transcript"].as_str().unwrap();
    assert!(transcript.contains("< effect: local reply 403"), "{transcript}");
}

#[test]
fn config_and_config_file_replace_the_exchanges_configuration() {
    let exchange = file("config", "headers.yaml", HEADERS);
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange, "--json", "--config", "metrics"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["metrics"], json!({"requests_total": 1, "active": 0, "latency": [42]}));
    assert!(!has_pair(&v["request"]["headers"], "x-added", "1"), "the headers scenario did not run");

    let config = file("config", "counter.txt", "counter");
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange, "--config-file", &config]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.contains("proxy_get_buffer_bytes(buffer_type=PLUGIN_CONFIGURATION"), "{}", r.out);
    assert!(r.out.contains("=> OK value=\"counter\""), "{}", r.out);
    assert!(r.out.contains("\"x-request-count\": \"1\""), "{}", r.out);

    // A configuration the plugin rejects: it does not start (exit 1), and says why.
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange, "--json", "--config", "no-such-scenario"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err_line().contains("could not start: proxy_on_configure of plugin `headers` returned false"), "{}", r.err);
    let v = r.json();
    assert!(v["error"].as_str().unwrap().contains("rejected its configuration"), "{}", v["error"]);
    let logs: Vec<&str> = v["logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert!(logs.contains(&"root 1: unknown scenario `no-such-scenario`"), "the plugin's own reason is kept: {logs:?}");
    assert!(v["callbacks"].as_array().unwrap().iter().any(|c| c["callback"] == "proxy_on_configure" && c["result"] == 0));
    assert_eq!(v["request"]["headers"], json!([]));
}

#[test]
fn a_trapping_plugin_exits_1_with_the_trap_in_the_report() {
    let exchange = file("trap", "headers.yaml", HEADERS);
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange, "--json", "--config", "trap"]);
    assert_eq!(r.code, 1, "{r:?}");
    // stderr: the host's own diagnostic of the failure (through `tracing`), then pwhost's line.
    let lines: Vec<&str> = r.err.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.err);
    for part in ["ERROR", "plugin `headers` failed in proxy_on_request_headers (trap)", "callback=\"proxy_on_request_headers\"", "kind=\"trap\"", "backtrace="] {
        assert!(lines[0].contains(part), "no `{part}` in {}", lines[0]);
    }
    assert!(lines[1].contains("trapped: "), "{}", r.err);
    let v = r.json();
    let failures: Vec<&Value> = v["stats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "proxy_wasm_plugin_failures_total" && s["labels"]["kind"] == "trap")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["value"], 1.0);
    assert_eq!(failures[0]["labels"]["plugin"], "headers");
    let trap = v["trap"].as_str().expect("a trap");
    assert!(trap.contains("unreachable"), "a Rust panic is an `unreachable` trap: {trap}");
    let trapped: Vec<&Value> = v["callbacks"].as_array().unwrap().iter().filter(|c| c.get("trap").is_some()).collect();
    assert_eq!(trapped.len(), 1, "{trapped:?}");
    assert_eq!(trapped[0]["callback"], "proxy_on_request_headers");
    // Fail closed (the default): a local 503, and the response never reaches the failed VM.
    assert_eq!(v["local_reply"]["status"], 503);
    assert!(!v["callbacks"].as_array().unwrap().iter().any(|c| c["callback"] == "proxy_on_response_headers"));
    let logs: Vec<(&str, &str)> =
        v["logs"].as_array().unwrap().iter().map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap())).collect();
    assert!(logs.iter().any(|(level, m)| *level == "CRITICAL" && m.contains("boom")), "the SDK logs its panic: {logs:?}");

    // Text mode says the same at the end of the summary.
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange, "--config", "trap"]);
    assert_eq!(r.code, 1);
    let summary = r.out.split_once("\n---\n").unwrap().1;
    assert!(summary.contains("local reply:       503 "), "{summary}");
    assert!(summary.lines().last().unwrap().starts_with("trap:              "), "{summary}");
}

const UNKNOWN_IMPORT_WAT: &str = r#"(module
  (import "env" "proxy_get_shared_data_v2" (func))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0)))
"#;

#[test]
fn inspect_shows_the_abi_imports_exports_and_verdict() {
    let r = pwhost(&["inspect", "--engine", engine(), &sdk()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.err, "");
    let lines: Vec<&str> = r.out.lines().collect();
    assert!(lines.contains(&format!("engine:   {}", engine()).as_str()), "{}", r.out);
    assert!(lines.contains(&"abi:      0.2.1"), "{}", r.out);
    assert!(lines.iter().any(|l| l.starts_with("enforces: a sandbox")), "{}", r.out);
    let imports = lines.iter().position(|l| *l == "imports:").expect("an imports section");
    let exports = lines.iter().position(|l| *l == "exports:").expect("an exports section");
    assert!(imports < exports);
    let imported = &lines[imports + 1..exports];
    assert!(imported.contains(&"  env.proxy_log (i32, i32, i32) -> i32"), "{imported:?}");
    assert!(imported.contains(&"  env.proxy_increment_metric (i32, i64) -> i32"), "{imported:?}");
    assert!(!r.out.contains("does not provide"), "the SDK imports only what the host has:\n{}", r.out);
    let exported = &lines[exports + 1..];
    assert!(exported.contains(&"  proxy_on_request_headers (i32, i32, i32) -> i32"), "{exported:?}");
    assert!(exported.contains(&"  malloc (i32) -> i32"), "{exported:?}");
    assert_eq!(lines.last(), Some(&"verdict:  loads"));
    // With no --engine, inspect picks a Wasm engine for a .wasm file.
    let r = pwhost(&["inspect", &sdk()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.contains("abi:      0.2.1"));
}

#[test]
fn a_module_with_an_unknown_import_is_named_and_refused_with_exit_1() {
    let module = file("unknown_import", "v2.wat", UNKNOWN_IMPORT_WAT);
    let r = pwhost(&["inspect", "--engine", engine(), &module]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out.lines().any(|l| l == "  env.proxy_get_shared_data_v2 () -> ()   <- this host does not provide it"),
        "{}",
        r.out
    );
    assert_eq!(
        r.out.lines().last(),
        Some("verdict:  refused: it imports `env.proxy_get_shared_data_v2`, which this host does not provide")
    );
    // Said once, on the verdict's line.
    assert!(r.out.lines().any(|l| l == "abi:      ? (see the verdict)"), "{}", r.out);
    assert_eq!(r.out.matches("which this host does not provide").count(), 1, "{}", r.out);
    // `run` refuses it the same way, before any step.
    let exchange = file("unknown_import", "headers.yaml", HEADERS);
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &module, "--exchange", &exchange]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err_line().contains("is refused: it imports `env.proxy_get_shared_data_v2`"), "{}", r.err);
    assert_eq!(r.out, "");
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &module, "--exchange", &exchange, "--json"]);
    assert_eq!(r.code, 1);
    assert!(r.json()["error"].as_str().unwrap().contains("env.proxy_get_shared_data_v2"));
}

#[test]
fn two_plugins_with_one_root_id_in_one_vm_are_refused_by_name() {
    // `others` with the same vm_id and VM configuration join the first plugin's VM.
    let exchange = file(
        "duplicate_root",
        "two.yaml",
        "plugin: {name: a, configuration: tick}\nothers: [{name: b, configuration: tick}]\nsteps: [tick]\n",
    );
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err_line().contains("a plugin with root id `` is already started in this VM"), "{}", r.err);
}

#[test]
fn bad_input_is_one_line_naming_the_problem_and_exit_2() {
    let sdk = sdk();
    let exchange = file("bad_input", "headers.yaml", HEADERS);
    let missing = root().join("target").join("pwhost-tests").join("bad_input").join("missing.wasm");
    let missing = missing.to_string_lossy().into_owned();
    let garbage = file("bad_input", "garbage.wasm", b"\0asm\x01\0\0\0\x01\xff");
    let text = file("bad_input", "text.wasm", "this is not a module\n");
    let empty = file("bad_input", "empty.wasm", "");
    let unknown_step = file("bad_input", "step.yaml", "steps:\n  - tick\n  - request_hedaers: {}\n");
    let unknown_key = file("bad_input", "key.yaml", "stpes: [tick]\n");
    let plugin_key = file("bad_input", "plugin.yaml", "plugin: {nmae: x}\nsteps: [tick]\n");
    let bad_value = file("bad_input", "value.yaml", "steps:\n  - downstream_close: SIDEWAYS\n");
    let not_yaml = file("bad_input", "broken.yaml", "steps: [\n  - {\n");
    let engine = engine();
    let not_built = engines::ALL.iter().map(|(n, _)| *n).find(|n| !engines::built_in().contains(n));

    let mut cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["run", "--engine", engine, "--plugin", &missing, "--exchange", &exchange], format!("cannot read plugin `{missing}`")),
        (vec!["inspect", "--engine", engine, &missing], format!("cannot read plugin `{missing}`")),
        (vec!["run", "--engine", engine, "--plugin", &garbage, "--exchange", &exchange], "is not a valid Wasm module for".into()),
        (vec!["inspect", "--engine", engine, &garbage], "is not a valid Wasm module for".into()),
        // The text-format parser's error spans several lines: it comes out as one.
        (vec!["run", "--engine", engine, "--plugin", &text, "--exchange", &exchange], "is not a Wasm binary, nor valid Wasm text: expected `(`".into()),
        (vec!["inspect", "--engine", engine, &text], "is not a Wasm binary, nor valid Wasm text: expected `(`".into()),
        (vec!["inspect", "--engine", engine, &text], "at line 1, column 1".into()),
        (vec!["run", "--engine", engine, "--plugin", &empty, "--exchange", &exchange], format!("plugin `{empty}` is empty")),
        (vec!["inspect", "--engine", engine, &empty], format!("plugin `{empty}` is empty")),
        (vec!["run", "--engine", engine, "--plugin", &sdk, "--exchange", &unknown_step], "step 2 (`request_hedaers`): unknown step `request_hedaers`".into()),
        (vec!["run", "--engine", engine, "--plugin", &sdk, "--exchange", &unknown_key], "unknown key `stpes`".into()),
        (vec!["run", "--engine", engine, "--plugin", &sdk, "--exchange", &plugin_key], "unknown key `nmae` in `plugin`".into()),
        (vec!["run", "--engine", engine, "--plugin", &sdk, "--exchange", &bad_value], "step 1 (`downstream_close`): `SIDEWAYS` is not a peer type".into()),
        (vec!["run", "--engine", engine, "--plugin", &sdk, "--exchange", &not_yaml], "not valid YAML".into()),
        (vec!["run", "--engine", engine, "--plugin", &sdk, "--exchange", "no/such/exchange.yaml"], "cannot read exchange `no/such/exchange.yaml`".into()),
        (vec!["run", "--engine", "warp", "--plugin", &sdk, "--exchange", &exchange], "no engine is called `warp`; the engines are wasmtime,".into()),
        // The command line itself, in clap's words.
        (vec!["run", "--engine", engine, "--plugin", &sdk, "--exchange", &exchange, "--verbose"], "unexpected argument '--verbose' found".into()),
        (vec!["inspect", "--verbose", &sdk], "unexpected argument '--verbose' found".into()),
        (vec!["run", "--engine", engine, "--plugin", &sdk], "the following required arguments were not provided: --exchange <FILE.yaml>".into()),
        (vec!["run", "--engine", engine, "--plugin", &sdk, "--exchange", &exchange, "--config", "a", "--config-file", &exchange], "the argument '--config <STRING>' cannot be used with '--config-file <FILE>'".into()),
        (vec!["run", "--engine", engine, "--engine", engine], "the argument '--engine <NAME>' cannot be used multiple times".into()),
        (vec!["run", "--engine"], "a value is required for '--engine <NAME>' but none was supplied".into()),
        (vec!["inspect"], "the following required arguments were not provided: <FILE>".into()),
        (vec!["frobnicate"], "unrecognized subcommand 'frobnicate'".into()),
        (vec!["completions", "tcsh"], "invalid value 'tcsh' for '<SHELL>'".into()),
    ];
    if engines::built_in().contains(&"null") {
        // The Null VM loads native plugins: a file it cannot load is not called a bad Wasm module.
        let why = "is not a plugin the Null VM can load: it is a Wasm module (10 bytes), and the Null VM runs native plugins only";
        cases.push((vec!["run", "--engine", "null", "--plugin", &garbage, "--exchange", &exchange], format!("plugin `{garbage}` {why}")));
        cases.push((vec!["run", "--engine", "null", "--plugin", &garbage, "--exchange", &exchange, "--json"], format!("plugin `{garbage}` {why}")));
        // Text is counted, not echoed as a static plugin's name.
        let why = "is not a plugin the Null VM can load: the code (21 bytes) is neither a shared library (ELF)";
        cases.push((vec!["run", "--engine", "null", "--plugin", &text, "--exchange", &exchange], format!("plugin `{text}` {why}")));
    }
    if let Some(name) = not_built {
        cases.push((
            vec!["run", "--engine", name, "--plugin", &sdk, "--exchange", &exchange],
            format!("engine `{name}` is not built into this binary"),
        ));
        cases.push((vec!["inspect", "--engine", name, &sdk], "rebuild with the Cargo feature".into()));
    }
    for (args, expected) in &cases {
        let r = pwhost(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.out, "", "{args:?}: nothing on stdout");
        let line = r.err_line();
        assert!(line.starts_with("pwhost: "), "{args:?}: {line}");
        assert!(line.contains(expected.as_str()), "{args:?}: `{line}` lacks `{expected}`");
    }
}

#[test]
fn help_completions_and_engines() {
    let r = pwhost(&["help"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert!(r.out.contains("Usage: pwhost <COMMAND>"), "{}", r.out);
    for command in ["run", "inspect", "engines", "completions", "help"] {
        assert!(r.out.contains(&format!("\n  {command} ")), "help lists `{command}`:\n{}", r.out);
    }
    assert!(r.out.contains("Exit codes:") && r.out.contains("  2  bad input"), "help gives the exit codes:\n{}", r.out);
    // The same causes as the README's table of exit codes.
    for cause in ["fails its sha256 or signature", "a precompiled-cache file that fails its checks", "an unknown option or a missing one"] {
        assert!(r.out.replace("\n    ", " ").replace("  ", " ").contains(cause), "help lacks `{cause}`:\n{}", r.out);
    }
    // --plugin is optional: the exchange's plugin.code may name the code instead.
    let usage = "Usage: pwhost run [OPTIONS] --engine <NAME> --exchange <FILE.yaml>";
    for args in [&["help", "run"][..], &["run", "--help"]] {
        let r = pwhost(args);
        assert_eq!((r.code, r.err.as_str()), (0, ""), "{args:?}");
        assert!(r.out.contains(usage), "{args:?}:\n{}", r.out);
        for option in ["--plugin <FILE>", "--config <STRING>", "--config-file <FILE>", "--json"] {
            assert!(r.out.contains(option), "{args:?} lacks {option}:\n{}", r.out);
        }
        assert!(r.out.contains("Exit codes:") && r.out.contains("  2  bad input"), "{args:?}: the exit codes:\n{}", r.out);
    }
    let r = pwhost(&["inspect", "-h"]);
    assert_eq!(r.code, 0);
    assert!(r.out.contains("Usage: pwhost inspect [OPTIONS] <FILE>"), "{}", r.out);
    assert!(r.out.contains("Exit codes:"), "inspect's help gives the exit codes:\n{}", r.out);
    let r = pwhost(&[]);
    assert_eq!(r.code, 2, "no command is a usage error");
    assert_eq!(r.out, "");
    assert!(r.err.contains("Usage: pwhost <COMMAND>"), "{}", r.err);
    // Shell completions know the commands, the options and the engines built in.
    let r = pwhost(&["completions", "bash"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert!(r.out.contains("_pwhost()"), "{}", r.out);
    for word in ["inspect", "--exchange", "--config-file", engines::built_in()[0]] {
        assert!(r.out.contains(word), "the bash completions lack `{word}`");
    }
    let r = pwhost(&["engines"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.out.lines().collect::<Vec<_>>(), engines::built_in());
    // --version: the version, the engines built in, the ABI versions; -V the version alone.
    let r = pwhost(&["--version"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let version = format!("pwhost {}", env!("CARGO_PKG_VERSION"));
    let engines_line = format!("engines: {}", engines::built_in().join(", "));
    assert_eq!(r.out.lines().collect::<Vec<_>>(), [version.as_str(), &engines_line, "Proxy-Wasm ABI: 0.2.1, 0.2.0, 0.1.0"]);
    let r = pwhost(&["-V"]);
    assert_eq!((r.code, r.out.trim_end()), (0, version.as_str()));
    assert!(pwhost(&["help"]).out.contains("-V, --version"), "help lists --version");
}

#[test]
fn one_line_keeps_the_message_and_the_place() {
    let wat = "expected `(`\n     --> <anon>:3:7\n      |\n    3 | not wasm\n      | ^";
    assert_eq!(pwhost::cli::one_line(wat), "expected `(` at line 3, column 7");
    assert_eq!(pwhost::cli::one_line("failed\n\nCaused by:\n    bad magic"), "failed; Caused by:; bad magic");
    assert_eq!(pwhost::cli::one_line("already one line"), "already one line");
}

/// What each example exchange must do, checked on its `--json` report.
fn check_example(name: &str, v: &Value) {
    let logs: Vec<&str> = v["logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    match name {
        "headers" => {
            assert!(has_pair(&v["request"]["headers"], "x-a", "changed"), "{}", v["request"]);
            assert!(has_pair(&v["request"]["headers"], "x-added", "1"), "{}", v["request"]);
            assert!(!v["request"]["headers"].to_string().contains("x-remove"), "{}", v["request"]);
            assert!(has_pair(&v["response"]["headers"], "x-response", "yes"), "{}", v["response"]);
        }
        "authz" => {
            assert_eq!(v["callouts"].as_array().unwrap().len(), 2);
            assert!(logs.contains(&"callout: allowed, resuming the request"), "{logs:?}");
            assert_eq!(v["local_reply"]["status"], 403, "the second request is denied");
            assert_eq!(v["local_reply"]["body"], "forbidden");
        }
        "body" => assert_eq!(v["request"]["body"], "bar, bard"),
        "counter" => assert!(has_pair(&v["request"]["headers"], "x-request-count", "2"), "{}", v["request"]),
        "queue" => assert!(logs.contains(&"got /orders/17"), "the consumer VM got the item: {logs:?}"),
        "tick" => assert_eq!(v["metrics"], json!({"ticks_total": 2})),
        "tcp" => assert_eq!(v["connection"], json!({"downstream": "PING PONG", "upstream": "ok"})),
        other => panic!("examples/{other}.yaml has no expectation here: add one to check_example"),
    }
}

fn examples() -> Vec<(String, PathBuf)> {
    let dir = root().join("examples");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    found.sort();
    assert!(found.len() >= 2, "the examples are missing: {found:?}");
    found
}

#[test]
fn every_example_runs_through_pwhost_and_does_what_it_says() {
    let sdk = sdk();
    for (name, path) in examples() {
        for engine in wasm_engines() {
            let r = pwhost(&["run", "--engine", engine, "--plugin", &sdk, "--exchange", &path.to_string_lossy(), "--json"]);
            assert_eq!(r.code, 0, "examples/{name}.yaml on {engine}: {}", r.err);
            let v = r.json();
            assert_eq!(v["trap"], Value::Null, "examples/{name}.yaml");
            assert_eq!(v["error"], Value::Null, "examples/{name}.yaml");
            check_example(&name, &v);
        }
    }
}

/// Splits a command line as a shell would for the simple lines the README has: words, and
/// quoted strings without escapes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// Every `pwhost run` and `pwhost inspect` line in the README's code blocks runs as written
/// (from the workspace root) and exits as its `# exits N` comment says (0 without one); every
/// example file is shown there, and every one it names exists.
#[test]
fn the_readme_commands_run_and_name_every_example() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut in_code = false;
    let mut ran = 0;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let line = line.trim();
        if !in_code || !(line.starts_with("pwhost run ") || line.starts_with("pwhost inspect ")) {
            continue;
        }
        let (command, comment) = line.split_once('#').unwrap_or((line, ""));
        let command = command.split_once('|').map_or(command, |(c, _)| c);
        let expected: u8 = comment.trim().strip_prefix("exits ").map_or(0, |n| n.trim().parse().expect("`# exits N`"));
        let args: Vec<String> = words(command)
            .into_iter()
            .skip(1)
            .map(|w| if w.starts_with("examples/") || w.starts_with("target/") { root().join(&w).to_string_lossy().into_owned() } else { w })
            .collect();
        if args.iter().any(|a| a.ends_with("sdk_e2e.wasm")) {
            sdk(); // builds the plugin if needed
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = pwhost(&args);
        assert_eq!(r.code, expected, "README: `{line}` exited {}: {}", r.code, r.err);
        ran += 1;
    }
    assert!(ran >= 3, "the README shows at least `run`, `run --json` and `inspect` ({ran} found)");
    for (name, _) in examples() {
        assert!(readme.contains(&format!("examples/{name}.yaml")), "the README does not show examples/{name}.yaml");
    }
    for (i, _) in readme.match_indices("examples/") {
        let rest = &readme[i..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || "/_-.".contains(c))).unwrap_or(rest.len());
        let named = rest[..end].trim_end_matches('.');
        if named.ends_with(".yaml") {
            assert!(root().join(named).is_file(), "the README names {named}, which does not exist");
        }
    }
}

/// Bytes that are not UTF-8 go in as `{hex: ...}` / `{base64: ...}` and come out exact: the
/// SDK plugin rewrites `foo` to `bar` inside a binary body, and `--json` gives the result as
/// base64 (never U+FFFD), a binary header value likewise; the text output escapes them.
#[test]
fn bytes_that_are_not_utf8_pass_exactly() {
    let exchange = file(
        "bytes",
        "binary.yaml",
        r#"
plugin: {name: body, configuration: body}
steps:
  - request_headers: [[":path", /upload], [":method", POST], [x-bin, {hex: "61c0a7ff7a"}]]
  - request_body: {hex: "00ff666f6fc0"}
    end_of_stream: true
"#,
    );
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v = r.json();
    assert_eq!(v["request"]["body"], json!({"base64": "AP9iYXLA"}), "00 ff 'bar' c0");
    let headers = v["request"]["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["x-bin", {"base64": "YcCn/3o="}])), "{headers:?}");
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &sdk(), "--exchange", &exchange]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains(r#"request body:      "\0\xffbar\xc0""#), "{}", r.out);
    assert!(r.out.contains(r#""x-bin": "a\xc0\xa7\xffz""#), "{}", r.out);
    assert!(!r.out.contains('\u{fffd}'), "{}", r.out);
}

/// A plugin that loops forever cannot hang `pwhost run`: the default CPU deadline (5 s) stops
/// it when the exchange sets none, `--call-deadline-ms` replaces the exchange's, and `none` is
/// accepted (and refused when it is not a number or `none`).
#[test]
fn a_plugin_looping_forever_is_stopped_by_the_default_deadline() {
    let plugin = file(
        "deadline",
        "loop.wat",
        r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))"#,
    );
    let exchange = file("deadline", "loop.yaml", "steps:\n  - request_headers: {\":path\": /}\n");
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &plugin, "--exchange", &exchange]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert!(r.out.contains("proxy_on_request_headers(context_id=2, num_headers=1, end_of_stream=true) -> trap: deadline"), "{}", r.out);
    assert!(r.err.contains("ran longer than its 5s deadline"), "{}", r.err);
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &plugin, "--exchange", &exchange, "--call-deadline-ms", "50"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert!(r.err.contains("ran longer than its 50ms deadline"), "{}", r.err);
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &plugin, "--exchange", &exchange, "--call-deadline-ms", "soon"]);
    assert_eq!(r.code, 2);
    assert!(r.err_line().contains("`soon` is not a number of milliseconds or `none`"), "{}", r.err);
    // `none` parses (not run: nothing would stop the loop).
    let none = file("deadline", "none.yaml", "limits: {call_deadline_ms: none}\nsteps: [tick]\n");
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &plugin, "--exchange", &none]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
}

/// `pwhost keygen`, `sign` and `verify`, then `run` on an exchange whose `plugin.code` names
/// the signed module with its sha256 and the public key: it runs; a wrong sha256 is refused with
/// both hashes, a module changed after signing is refused by its signature (exit 1, never run).
#[test]
fn signed_code_from_the_exchange_runs_and_changed_code_is_refused() {
    let dir = root().join("target").join("pwhost-tests").join("signed_code");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let at = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let r = pwhost(&["keygen", "--out", &at("k")]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = pwhost(&["keygen", "--out", &at("other")]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = pwhost(&["sign", "--key", &at("k.key"), "--out", &at("signed.wasm"), &sdk()]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = pwhost(&["verify", "--public-key", &at("k.pub"), &at("signed.wasm")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.starts_with("signature OK (Ed25519)"), "{}", r.out);
    let r = pwhost(&["verify", "--public-key", &at("other.pub"), &at("signed.wasm")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err_line().contains("signature check failed"), "{}", r.err);

    let signed = std::fs::read(at("signed.wasm")).unwrap();
    let exchange = |name: &str, module: &str, sha: &str| {
        let text = format!(
            "plugin:\n  name: headers\n  configuration: headers\n  code:\n    local: {{filename: {module}}}\n    sha256: {sha}\n    signature: {{public_key_file: k.pub}}\nsteps:\n  - request_headers: {{\":path\": /a, x-a: \"1\"}}\n"
        );
        std::fs::write(dir.join(name), text).unwrap();
        at(name)
    };
    let good = code_source::Digest::of(&signed).hex();
    let r = pwhost(&["run", "--engine", engine(), "--exchange", &exchange("good.yaml", "signed.wasm", &good)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.contains("proxy_on_request_headers("), "{}", r.out);

    let wrong = "0".repeat(64);
    let r = pwhost(&["run", "--engine", engine(), "--exchange", &exchange("wrong.yaml", "signed.wasm", &wrong)]);
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.err_line();
    assert!(line.contains(&format!("expected {wrong}, got {good}")), "{line}");
    assert!(!r.out.contains("proxy_on_request_headers("), "a refused module never runs: {}", r.out);

    // One byte of the code section changed after signing, with a matching sha256: the
    // signature no longer covers it.
    let mut changed = signed.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    std::fs::write(dir.join("changed.wasm"), &changed).unwrap();
    let sha = code_source::Digest::of(&changed).hex();
    let r = pwhost(&["run", "--engine", engine(), "--exchange", &exchange("changed.yaml", "changed.wasm", &sha)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err_line().contains("is refused"), "{}", r.err);
    assert!(!r.out.contains("proxy_on_request_headers("), "a refused module never runs: {}", r.out);
}

/// `--precompiled-cache DIR`: the first run writes the compiled module, the second runs from
/// it; a cache file changed since is refused by name (exit 1, never run), and a directory others
/// can write is bad input.
#[test]
fn the_precompiled_cache_serves_the_next_run_and_refuses_a_changed_file() {
    let dir = root().join("target").join("pwhost-tests").join("precompiled");
    let _ = std::fs::remove_dir_all(&dir);
    let cache = dir.join("cache");
    let exchange = file("precompiled", "headers.yaml", HEADERS);
    let wasmtime = "wasmtime";
    if !engines::built_in().contains(&wasmtime) {
        return;
    }
    let run = || {
        pwhost(&["run", "--engine", wasmtime, "--plugin", &sdk(), "--exchange", &exchange, "--precompiled-cache", &cache.to_string_lossy()])
    };
    let r = run();
    assert_eq!(r.code, 0, "{r:?}");
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert!(entry.file_name().unwrap().to_string_lossy().starts_with("wasmtime-"), "{}", entry.display());
    let r = run();
    assert_eq!(r.code, 0, "{r:?}");
    let mut bytes = std::fs::read(entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(entry, &bytes).unwrap();
    let r = run();
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.err_line();
    assert!(line.contains(&format!("precompiled-module cache {}: its content does not match its checksum", entry.display())), "{line}");
    assert!(!r.out.contains("proxy_on_request_headers("), "never run: {}", r.out);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let r = run();
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.err_line().contains("writable by its group or by everyone"), "{}", r.err);
    }
}

/// Calls `declare_property` (name "p", readonly, type Protobuf, schema 0xff 0x00) and
/// `clear_route_cache` from its request headers.
const FOREIGN_WAT: &str = r#"(module
  (import "env" "proxy_call_foreign_function" (func $call (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0x1000))
  (data (i32.const 0x100) "declare_property")
  (data (i32.const 0x120) "clear_route_cache")
  (data (i32.const 0x200) "\0a\01p\10\01\18\03\22\02\ff\00")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $call (i32.const 0x100) (i32.const 16) (i32.const 0x200) (i32.const 11) (i32.const 0x10) (i32.const 0x14)))
    (drop (call $call (i32.const 0x120) (i32.const 17) (i32.const 0) (i32.const 0) (i32.const 0x10) (i32.const 0x14)))
    (i32.const 0)))
"#;

#[test]
fn run_json_lists_the_proxy_specific_foreign_calls_with_exact_bytes() {
    let module = file("run_json_foreign", "foreign.wat", FOREIGN_WAT);
    let exchange = file("run_json_foreign", "headers.yaml", HEADERS);
    let r = pwhost(&["run", "--engine", engine(), "--plugin", &module, "--exchange", &exchange, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(
        v["foreign"],
        json!([
            {"function": "declare_property", "context_id": 2, "arguments": {
                "name": "p", "readonly": "true", "type": "Protobuf", "schema": {"base64": "/wA="}, "span": "FilterChain"}},
            {"function": "clear_route_cache", "context_id": 2, "arguments": {}},
        ])
    );
    assert!(v["transcript"].as_str().unwrap().contains("< foreign clear_route_cache context=2\n"), "{}", v["transcript"]);
}
