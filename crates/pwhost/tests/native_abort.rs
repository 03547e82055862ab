//! The `pwhost` binary with a native plugin (the Null VM) that aborts the process: the SDK
//! plugin built as a shared library with `panic = "abort"`, configured to panic in
//! `proxy_on_request_headers`. The process dies of SIGABRT, and what happened until then is on
//! stdout (the transcript streams), with one line on stderr saying why it stops.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use guest_plugins::Target;

#[test]
fn a_native_abort_leaves_the_transcript_so_far_and_says_so() {
    let plugin = guest_plugins::path(Target::Native, "sdk_e2e").unwrap_or_else(|e| panic!("{e}"));
    let dir = guest_plugins::workspace_root().join("target").join("pwhost-tests").join("native_abort");
    std::fs::create_dir_all(&dir).unwrap();
    let exchange = dir.join("trap.yaml");
    std::fs::write(&exchange, "plugin: {name: trap, configuration: trap}\nsteps:\n  - request_headers: {\":path\": /}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pwhost"))
        .args(["run", "--engine", "null", "--plugin"])
        .arg(&plugin)
        .arg("--exchange")
        .arg(&exchange)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}\n{stdout}\n{stderr}", out.status);
    // The start and the step that led to the abort, streamed before the process died.
    assert!(stdout.contains("proxy_on_configure(context_id=1"), "{stdout}");
    assert!(stdout.contains("> request_headers {\":path\": \"/\"} end_of_stream"), "{stdout}");
    assert!(stdout.contains("proxy_on_request_headers(context_id=2, num_headers=1, end_of_stream=true)"), "{stdout}");
    assert!(stderr.contains("pwhost: a native plugin aborted the process (SIGABRT)"), "{stderr}");
}
