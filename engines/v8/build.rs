//! Builds the V8 engine's C++ shim (`shim/v8_shim.cc`) against Debian's libnode (V8 10.2) as a
//! small shared library of its own, `libproxy_wasm_v8_shim.so`, which the crate embeds and
//! loads at run time (`src/sys/ffi.rs`).
//!
//! Why a shared library of its own: libnode is not installed system-wide (its package conflicts
//! with the machine's `nodejs`), so something must tell the dynamic loader where
//! `libnode.so.108` is. Linking libnode into the Rust crate would put that burden (an rpath) on
//! every binary of every crate that depends on this one, since Cargo's link arguments reach only
//! the package's own binaries. The shim library instead carries its own run path (`DT_RUNPATH`)
//! to libnode's folder, and nothing else in the build links libnode: any binary that depends on
//! this crate runs without `LD_LIBRARY_PATH`, build scripts or rustflags.
//!
//! Where libnode is: `LIBNODE_ROOT` if set, else `<workspace>/target/libnode`, the folder
//! `cargo xtask setup` unpacks `libnode108` and `libnode-dev` into. Without it the build stops
//! with a message naming that command.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The command that unpacks libnode, named in every error about it.
const SETUP: &str = "cargo xtask setup";

fn main() {
    println!("cargo:rerun-if-env-changed=LIBNODE_ROOT");
    println!("cargo:rerun-if-changed=shim/v8_shim.cc");
    println!("cargo:rerun-if-changed=shim/v8_shim.h");

    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let (root, from_env) = match std::env::var_os("LIBNODE_ROOT") {
        Some(root) => (PathBuf::from(root), true),
        None => (manifest.join("../../target/libnode"), false),
    };
    let source = if from_env { "LIBNODE_ROOT" } else { "the default libnode folder (set LIBNODE_ROOT to use another)" };
    let include = root.join("usr/include/node");
    let lib = root.join("usr/lib/x86_64-linux-gnu");
    for (path, what) in [(include.join("v8.h"), "V8's headers (libnode-dev)"), (lib.join("libnode.so.108"), "libnode.so.108 (libnode108)")] {
        println!("cargo:rerun-if-changed={}", path.display());
        if !path.is_file() {
            fail(&format!(
                "the V8 engine (proxy-wasm-v8) builds against Debian's libnode (V8 10.2), unpacked by `{SETUP}`; \
                 {source} {} has no {what} at {}. Run `{SETUP}` in the workspace, or build without the `v8` feature.",
                root.display(),
                path.display()
            ));
        }
    }
    check_version(&include.join("v8-version.h"));
    let lib = lib.canonicalize().unwrap_or(lib);

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let library = out.join("libproxy_wasm_v8_shim.so");
    let compiler = cc::Build::new().cpp(true).opt_level(2).get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.args(["-std=c++17", "-shared", "-fPIC", "-fno-exceptions", "-fno-rtti", "-fvisibility=hidden"])
        .arg("-I")
        .arg(&include)
        .arg("-I")
        .arg(manifest.join("shim"))
        .arg(manifest.join("shim/v8_shim.cc"))
        .arg("-o")
        .arg(&library)
        .arg(format!("-L{}", lib.display()))
        .arg("-l:libnode.so.108")
        // DT_RUNPATH: the loader finds libnode.so.108 next to where the set-up put it.
        .arg(format!("-Wl,--enable-new-dtags,-rpath,{}", lib.display()))
        .arg("-Wl,--no-undefined");
    let status = cmd.status().unwrap_or_else(|e| {
        fail(&format!("cannot run the C++ compiler ({:?}) for the V8 shim: {e}; install g++ (`{SETUP}` checks it)", compiler.path()))
    });
    if !status.success() {
        fail(&format!("the C++ compiler failed to build the V8 shim ({status}): {cmd:?}"));
    }
    println!("cargo:rustc-env=PROXY_WASM_V8_SHIM={}", library.display());
    println!("cargo:rustc-env=PROXY_WASM_V8_LIBNODE={}", lib.display());
}

/// Refuses headers of another V8 than 10.2: the shim is written against that API.
fn check_version(header: &Path) {
    let text = std::fs::read_to_string(header).unwrap_or_default();
    let num = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix("#define ")?.strip_prefix(name)?.trim().parse::<u32>().ok())
    };
    match (num("V8_MAJOR_VERSION"), num("V8_MINOR_VERSION")) {
        (Some(10), Some(2)) => {}
        (major, minor) => fail(&format!(
            "{} says V8 {major:?}.{minor:?}; the V8 shim is written for V8 10.2 (Debian's libnode108): run `{SETUP}`.",
            header.display()
        )),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
