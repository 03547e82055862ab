//! A conformance case: a YAML file holding the exchange (in the harness's format, see
//! [`proxy_wasm_harness::exchange`]) and three keys of its own:
//!
//! ```yaml
//! description: proxy_get_header_map_value answers NOT_FOUND for a missing key
//! guest: conformance          # a guest plugin crate, or `wat: |` with a module inline
//! requires: [sandbox]         # what the engine must have (optional)
//! plugin: {configuration: maps}
//! steps: [...]
//! ```
//!
//! Guests: `conformance` (the raw-ABI conformance guest), `conformance-wasip1` (the same
//! built for `wasm32-wasip1`), `sdk` (the unmodified-SDK plugin `sdk-e2e`), `raw-minimal`,
//! the plugins of other SDKs and toolchains by their names in [`guest_plugins::sdk::PLUGINS`]
//! (`sdk-rust-0.1`, `sdk-rust-0.2.0`, `sdk-rust-0.2.1`, `sdk-as`, `sdk-c`, `sdk-cpp`, ...), or
//! `{wat: "(module ...)"}`. Requirements: `sandbox` (hostile memory access, the WASI
//! interface, hand-written Wasm), `memory_limit`, `interrupt` (a CPU deadline), `wasm32` (the
//! guest's native build is not ABI-correct, so only its wasm32 build can run the case).

use std::path::{Path, PathBuf};

use guest_plugins::sdk::{self, SdkPlugin};
use proxy_wasm_harness::exchange::CASE_KEYS;
use proxy_wasm_harness::Exchange;
use proxy_wasm_host::Capabilities;
use serde_norway::{Mapping, Value};


/// The plugin a case runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guest {
    /// A plugin crate of `conformance/plugins`, by crate name (`sdk_e2e`), for wasm32 or
    /// wasip1.
    Crate {
        /// Its crate name with `_`.
        name: &'static str,
        /// Built for wasm32-wasip1 rather than wasm32-unknown-unknown.
        wasip1: bool,
    },
    /// A plugin of another SDK or toolchain (`guest_plugins::sdk`): built natively too when it
    /// is a Rust one, Wasm only otherwise.
    Sdk(&'static SdkPlugin),
    /// A module written in the text format.
    Wat(String),
}

/// Guest names a case may use, and the crate each stands for.
pub const GUESTS: &[(&str, &str, bool)] = &[
    ("conformance", "conformance_guest", false),
    ("conformance-wasip1", "conformance_guest", true),
    ("sdk", "sdk_e2e", false),
    ("raw-minimal", "raw_minimal", false),
];

/// What a case needs of an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// A sandbox: the case hands the host bad pointers, or is Wasm-only (WASI, text format).
    Sandbox,
    /// [`Capabilities::memory_limit`].
    MemoryLimit,
    /// [`Capabilities::interrupt`].
    Interrupt,
    /// The guest's wasm32 build: its native build breaks the ABI (for example an SDK that
    /// writes header-map sizes as `usize`, 8 bytes in a 64-bit build), so a native engine
    /// cannot run the case.
    Wasm32,
}

impl Requirement {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "sandbox" => Some(Requirement::Sandbox),
            "memory_limit" => Some(Requirement::MemoryLimit),
            "interrupt" => Some(Requirement::Interrupt),
            "wasm32" => Some(Requirement::Wasm32),
            _ => None,
        }
    }

    /// Why an engine with `caps` cannot run a case that needs this, or `None` if it can.
    pub fn missing(self, caps: Capabilities) -> Option<&'static str> {
        match self {
            Requirement::Sandbox if !caps.sandboxed => {
                Some("needs a sandbox: it gives the host hostile pointers or is Wasm-only, and this engine runs native code")
            }
            Requirement::MemoryLimit if !caps.memory_limit => Some("needs a memory limit, which this engine does not enforce"),
            Requirement::Interrupt if !caps.interrupt => Some("needs a CPU deadline, which this engine cannot enforce"),
            Requirement::Wasm32 if !caps.sandboxed => Some(
                "needs the guest's wasm32 build: its native build is not ABI-correct on 64-bit (the case's description says why), and this engine runs native code",
            ),
            _ => None,
        }
    }
}

/// One case.
#[derive(Clone, Debug)]
pub struct Case {
    /// `<group>/<name>`, from its path under the cases directory.
    pub name: String,
    /// The case file.
    pub path: PathBuf,
    /// What it checks, in a sentence.
    pub description: String,
    /// The plugin.
    pub guest: Guest,
    /// What it needs of an engine.
    pub requires: Vec<Requirement>,
    /// The exchange.
    pub exchange: Exchange,
}

impl Case {
    /// The golden transcript's path: beside the case, `.transcript` for `.yaml`.
    pub fn transcript_path(&self) -> PathBuf {
        self.path.with_extension("transcript")
    }

    /// Why an engine with `caps` cannot run this case, or `None` if it can.
    pub fn unsupported(&self, caps: Capabilities) -> Option<&'static str> {
        let wasm_only = matches!(self.guest, Guest::Wat(_) | Guest::Crate { wasip1: true, .. });
        if wasm_only && !caps.sandboxed {
            return Some("a Wasm-only guest (text format or WASI), and this engine runs native code");
        }
        if let Guest::Sdk(plugin) = self.guest {
            if let (Some(why), false) = (plugin.wasm_only(), caps.sandboxed) {
                return Some(why);
            }
        }
        self.requires.iter().find_map(|r| r.missing(caps))
    }
}

/// Reads one case file; `name` is how reports call it.
pub fn load(path: &Path, name: String) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text, path, name).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse(text: &str, path: &Path, name: String) -> Result<Case, String> {
    let value: Value = serde_norway::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let Value::Mapping(mut m) = value else { return Err("a case is a mapping".into()) };
    let description = match m.remove("description") {
        Some(Value::String(d)) => d,
        _ => return Err("`description` (a sentence saying what the case checks) is required".into()),
    };
    let guest = match m.remove("guest") {
        Some(Value::String(g)) => match GUESTS.iter().find(|(n, _, _)| *n == g) {
            Some((_, name, wasip1)) => Guest::Crate { name, wasip1: *wasip1 },
            None => match sdk::PLUGINS.iter().find(|p| p.guest == g) {
                Some(plugin) => Guest::Sdk(plugin),
                None => {
                    let names: Vec<&str> =
                        GUESTS.iter().map(|(n, _, _)| *n).chain(sdk::PLUGINS.iter().map(|p| p.guest)).collect();
                    return Err(format!("unknown guest `{g}`; the guests are {} and {{wat: ...}}", names.join(", ")));
                }
            },
        },
        Some(Value::Mapping(g)) => match g.get("wat") {
            Some(Value::String(w)) if g.len() == 1 => Guest::Wat(w.clone()),
            _ => return Err("a guest mapping has one key, `wat`, with the module's text".into()),
        },
        _ => return Err("`guest` is required: a guest name or {wat: ...}".into()),
    };
    let requires = match m.remove("requires") {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .and_then(Requirement::parse)
                    .ok_or_else(|| format!("unknown requirement {i:?}; they are sandbox, memory_limit, interrupt, wasm32"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`requires` is a list".into()),
    };
    let exchange = proxy_wasm_harness::exchange::from_mapping(&without(m, CASE_KEYS)).map_err(|e| e.to_string())?;
    Ok(Case { name, path: path.to_path_buf(), description, guest, requires, exchange })
}

fn without(m: Mapping, keys: &[&str]) -> Mapping {
    m.into_iter().filter(|(k, _)| !k.as_str().is_some_and(|k| keys.contains(&k))).collect()
}

/// Every case under `dir`, sorted by name (`<group>/<name>`); the error names the first
/// file that does not load.
pub fn load_all(dir: &Path) -> Result<Vec<Case>, String> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .with_extension("")
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            load(&path, name)
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(text: &str) -> Result<Case, String> {
        parse(text, Path::new("/c/g/n.yaml"), "g/n".into())
    }

    #[test]
    fn a_case_parses_around_its_exchange() {
        let c = case("description: d\nguest: sdk\nrequires: [sandbox, interrupt]\nplugin: {configuration: x}\nsteps: [tick]")
            .unwrap();
        assert_eq!(c.guest, Guest::Crate { name: "sdk_e2e", wasip1: false });
        assert_eq!(c.requires, vec![Requirement::Sandbox, Requirement::Interrupt]);
        assert_eq!(c.exchange.plugin.configuration, b"x");
        assert_eq!(c.transcript_path(), Path::new("/c/g/n.transcript"));
        let native = Capabilities { sandboxed: false, ..Default::default() };
        assert!(c.unsupported(native).unwrap().contains("sandbox"));
        let wasm = Capabilities { sandboxed: true, memory_limit: true, interrupt: true, ..Default::default() };
        assert_eq!(c.unsupported(wasm), None);
        let w = case("description: d\nguest: {wat: '(module)'}\nsteps: []").unwrap();
        assert!(w.unsupported(native).unwrap().contains("Wasm-only"));
    }

    #[test]
    fn sdk_guests_run_natively_only_when_built_natively() {
        let native = Capabilities { sandboxed: false, ..Default::default() };
        let wasm = Capabilities { sandboxed: true, ..Default::default() };
        let rust = case("description: d\nguest: sdk-rust-0.1\nsteps: []").unwrap();
        assert_eq!(rust.guest, Guest::Sdk(sdk::find("sdk-rust-0.1").unwrap()));
        assert_eq!(rust.unsupported(native), None);
        let maps = case("description: d\nguest: sdk-rust-0.2.0\nrequires: [wasm32]\nsteps: []").unwrap();
        assert!(maps.unsupported(native).unwrap().contains("wasm32 build"));
        assert_eq!(maps.unsupported(wasm), None);
        for (guest, why) in [("sdk-as", "AssemblyScript"), ("sdk-c", "wasm32-wasi"), ("sdk-cpp", "wasm32-wasi")] {
            let c = case(&format!("description: d\nguest: {guest}\nsteps: []")).unwrap();
            assert!(c.unsupported(native).unwrap().contains(why), "{guest}");
            assert_eq!(c.unsupported(wasm), None, "{guest}");
        }
        // File stems are not guest names.
        assert!(case("description: d\nguest: sdk_as\nsteps: []").unwrap_err().contains("sdk-as"));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(case("guest: sdk").unwrap_err().contains("`description`"));
        assert!(case("description: d\nguest: sdkk").unwrap_err().contains("unknown guest `sdkk`"));
        assert!(case("description: d\nguest: sdk\nrequires: [gpu]").unwrap_err().contains("unknown requirement"));
        assert!(case("description: d\nguest: sdk\nstpes: []").unwrap_err().contains("unknown key `stpes`"));
    }
}
