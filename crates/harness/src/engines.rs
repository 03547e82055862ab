//! Engines by name: which ones exist, which ones this build has (the Cargo features of this
//! crate, the only place they are declared), and making one.

use std::fmt;
use std::sync::Arc;

use proxy_wasm_host::Engine;

/// Every engine this project knows, whether built in or not, with the Cargo feature of this
/// crate that builds it in (`--features proxy-wasm-harness/NAME` on any crate that runs
/// engines).
pub const ALL: &[(&str, &str)] = &[
    ("wasmtime", "wasmtime"),
    ("wasmer", "wasmer"),
    ("wasmer-singlepass", "wasmer-singlepass"),
    ("wamr", "wamr"),
    ("v8", "v8"),
    ("null", "null"),
];

/// Why an engine cannot be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// No engine has that name.
    Unknown(String),
    /// The engine exists but this binary was built without it.
    NotBuiltIn {
        /// The engine's name.
        name: &'static str,
        /// The Cargo feature that builds it in.
        feature: &'static str,
    },
    /// The engine could not be set up.
    Setup(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Unknown(name) => {
                let names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
                write!(f, "no engine is called `{name}`; the engines are {}", names.join(", "))
            }
            EngineError::NotBuiltIn { name, feature } => write!(
                f,
                "engine `{name}` is not built into this binary (built in: {}); rebuild with the Cargo feature `{feature}`",
                built_in().join(", ")
            ),
            EngineError::Setup(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// The names of the engines this build has, in [`ALL`]'s order.
pub fn built_in() -> Vec<&'static str> {
    ALL.iter().map(|(n, _)| *n).filter(|n| make(n).is_some()).collect()
}

/// A new engine called `name`.
pub fn engine(name: &str) -> Result<Arc<dyn Engine>, EngineError> {
    let Some((known, feature)) = ALL.iter().find(|(n, _)| *n == name) else {
        return Err(EngineError::Unknown(name.to_string()));
    };
    match make(known) {
        Some(made) => made,
        None => Err(EngineError::NotBuiltIn { name: known, feature }),
    }
}

/// Makes engine `name` if this build has it.
fn make(name: &str) -> Option<Result<Arc<dyn Engine>, EngineError>> {
    match name {
        #[cfg(feature = "wasmtime")]
        "wasmtime" => Some(Ok(Arc::new(proxy_wasm_wasmtime::WasmtimeEngine::default()))),
        #[cfg(feature = "wasmer")]
        "wasmer" => Some(Ok(Arc::new(proxy_wasm_wasmer::WasmerEngine::cranelift()))),
        #[cfg(feature = "wasmer-singlepass")]
        "wasmer-singlepass" => Some(Ok(Arc::new(proxy_wasm_wasmer::WasmerEngine::singlepass()))),
        #[cfg(feature = "wamr")]
        "wamr" => Some(match proxy_wasm_wamr::WamrEngine::new() {
            Ok(engine) => Ok(Arc::new(engine)),
            Err(e) => Err(EngineError::Setup(e.to_string())),
        }),
        #[cfg(feature = "v8")]
        "v8" => Some(
            proxy_wasm_v8::V8Engine::new(proxy_wasm_v8::V8Config::default())
                .map(|e| Arc::new(e) as Arc<dyn Engine>)
                .map_err(|e| EngineError::Setup(e.to_string())),
        ),
        #[cfg(feature = "null")]
        "null" => Some(Ok(Arc::new(proxy_wasm_null::NullVm::new()))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_real_ones() {
        let err = engine("wasmtime2").err().unwrap();
        assert_eq!(err, EngineError::Unknown("wasmtime2".into()));
        assert!(err.to_string().contains("wasmtime, wasmer, wasmer-singlepass, wamr, v8, null"), "{err}");
    }

    #[test]
    fn built_in_engines_are_made_and_named() {
        for name in built_in() {
            assert_eq!(engine(name).unwrap().name(), name);
        }
    }

    #[test]
    fn engines_left_out_name_their_feature() {
        for (name, feature) in ALL {
            if !built_in().contains(name) {
                let err = engine(name).err().unwrap();
                assert!(err.to_string().contains(&format!("Cargo feature `{feature}`")), "{err}");
            }
        }
    }
}
