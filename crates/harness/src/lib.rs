//! The harness: run a Proxy-Wasm plugin against a scripted exchange, on any engine built in, and
//! get back everything that happened. `pwhost`, the conformance suite, the end-to-end tests and
//! the benchmarks all run plugins through it.
//!
//! - [`scripted`]: the exchange model ([`Exchange`], [`Step`]), the in-memory embedder
//!   ([`ScriptedEmbedder`]) and the runner ([`run_exchange`], [`Outcome`]).
//! - [`attributes`]: Envoy's well-known attributes (`request.path`, `response.code`, ...),
//!   answered from the steps by the stream the runner makes ([`ScriptedStream`]).
//! - [`exchange`]: the exchange file format (YAML).
//! - [`foreign`]: Envoy's proxy-specific foreign functions, recorded as effects.
//! - [`report`]: an [`Outcome`] as JSON.
//! - [`engines`]: the engines by name, and which of them this build has.
//!
//! # Engines built in
//! Each engine is a Cargo feature of this crate: `wasmtime`, `wasmer` (Cranelift),
//! `wasmer-singlepass`, `wamr`, `v8`, `null`; all of them by default. No other crate declares one: they
//! depend on this crate and forward its default features, so
//! `cargo build -p pwhost --no-default-features --features proxy-wasm-harness/wasmtime` builds
//! `pwhost` with Wasmtime alone. [`engines::built_in`] names the engines of this build.
//!
//! The engine crates are re-exported ([`proxy_wasm_wasmtime`], [`proxy_wasm_wasmer`],
//! [`proxy_wasm_wamr`], [`proxy_wasm_v8`], [`proxy_wasm_null`]) when built in, and so are their engine libraries through them
//! (`proxy_wasm_wasmtime::wasmtime`, `proxy_wasm_wasmer::wasmer`). Code that names one (a raw
//! baseline, a static plugin of the Null VM) goes inside [`if_engine!`], which keeps it only
//! when that engine is built in.

pub mod attributes;
pub mod engines;
pub mod exchange;
pub mod foreign;
pub mod policy;
pub mod report;
pub mod scripted;

pub use attributes::{Connection, ScriptedStream};
pub use code_source;
pub use scripted::{run_exchange, transcript_error, Exchange, LogRecord, Outcome, ScriptedEmbedder, Step, ECHO_FUNCTION};

/// The Wasmtime engine crate (built in by the `wasmtime` feature).
#[cfg(feature = "wasmtime")]
pub use proxy_wasm_wasmtime;

/// The Wasmer engine crate (built in by the `wasmer` and `wasmer-singlepass` features).
#[cfg(any(feature = "wasmer", feature = "wasmer-singlepass"))]
pub use proxy_wasm_wasmer;

/// The WAMR engine crate (built in by the `wamr` feature).
#[cfg(feature = "wamr")]
pub use proxy_wasm_wamr;

/// The V8 engine crate (built in by the `v8` feature).
#[cfg(feature = "v8")]
pub use proxy_wasm_v8;

/// The Null VM crate (built in by the `null` feature).
#[cfg(feature = "null")]
pub use proxy_wasm_null;

/// Keeps code only when one of the named engines is built in: `if_engine!(NAME | NAME ... {
/// code })`, or `if_engine!(NAME { code } else { other code })` to have something in its place.
/// Names are the engines' with `_` for `-`: `wasmtime`, `wasmer`, `wasmer_singlepass`, `wamr`, `v8`, `null`;
/// any other name is a compile error.
///
/// The code is items or statements (an expression too, when both branches are given and the
/// macro stands where an expression goes). It is for code that names an engine crate or
/// library, which exists only when the engine is built in, so that a crate using it needs no
/// Cargo feature of its own:
///
/// ```
/// proxy_wasm_harness::if_engine!(wasmtime {
///     /// A bare Wasmtime engine, without our layer.
///     fn raw() -> proxy_wasm_harness::proxy_wasm_wasmtime::wasmtime::Engine {
///         proxy_wasm_harness::proxy_wasm_wasmtime::wasmtime::Engine::default()
///     }
/// });
/// let native = proxy_wasm_harness::if_engine!(null { true } else { false });
/// assert_eq!(native, proxy_wasm_harness::engines::built_in().contains(&"null"));
/// ```
#[macro_export]
macro_rules! if_engine {
    ($($name:ident)|+ { $($body:tt)* }) => {
        $crate::if_engine!{ $($name)|+ { $($body)* } else {} }
    };
    ($name:ident $(| $rest:ident)* { $($body:tt)* } else { $($otherwise:tt)* }) => {
        $crate::__engine_switch!{
            $name
            { $($body)* }
            { $crate::if_engine!{ $($rest)|* { $($body)* } else { $($otherwise)* } } }
        }
    };
    ({ $($body:tt)* } else { $($otherwise:tt)* }) => {
        $($otherwise)*
    };
}

/// `__engine_switch!(NAME {if built in} {if not})`: picks one branch by the engine's feature.
#[doc(hidden)]
#[macro_export]
macro_rules! __engine_switch {
    (wasmtime $yes:tt $no:tt) => { $crate::__if_wasmtime!{ $yes $no } };
    (wasmer $yes:tt $no:tt) => { $crate::__if_wasmer!{ $yes $no } };
    (wasmer_singlepass $yes:tt $no:tt) => { $crate::__if_wasmer_singlepass!{ $yes $no } };
    (wamr $yes:tt $no:tt) => { $crate::__if_wamr!{ $yes $no } };
    (v8 $yes:tt $no:tt) => { $crate::__if_v8!{ $yes $no } };
    (null $yes:tt $no:tt) => { $crate::__if_null!{ $yes $no } };
    ($other:ident $yes:tt $no:tt) => {
        ::core::compile_error!(::core::concat!(
            "no engine is called `", ::core::stringify!($other),
            "`; if_engine! knows wasmtime, wasmer, wasmer_singlepass, wamr, v8, null"
        ));
    };
}

#[cfg(feature = "wasmtime")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_wasmtime { ({ $($yes:tt)* } { $($no:tt)* }) => { $($yes)* }; }
#[cfg(not(feature = "wasmtime"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_wasmtime { ({ $($yes:tt)* } { $($no:tt)* }) => { $($no)* }; }

#[cfg(feature = "wasmer")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_wasmer { ({ $($yes:tt)* } { $($no:tt)* }) => { $($yes)* }; }
#[cfg(not(feature = "wasmer"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_wasmer { ({ $($yes:tt)* } { $($no:tt)* }) => { $($no)* }; }

#[cfg(feature = "wasmer-singlepass")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_wasmer_singlepass { ({ $($yes:tt)* } { $($no:tt)* }) => { $($yes)* }; }
#[cfg(not(feature = "wasmer-singlepass"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_wasmer_singlepass { ({ $($yes:tt)* } { $($no:tt)* }) => { $($no)* }; }

#[cfg(feature = "wamr")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_wamr { ({ $($yes:tt)* } { $($no:tt)* }) => { $($yes)* }; }
#[cfg(not(feature = "wamr"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_wamr { ({ $($yes:tt)* } { $($no:tt)* }) => { $($no)* }; }

#[cfg(feature = "v8")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_v8 { ({ $($yes:tt)* } { $($no:tt)* }) => { $($yes)* }; }
#[cfg(not(feature = "v8"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_v8 { ({ $($yes:tt)* } { $($no:tt)* }) => { $($no)* }; }

#[cfg(feature = "null")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_null { ({ $($yes:tt)* } { $($no:tt)* }) => { $($yes)* }; }
#[cfg(not(feature = "null"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_null { ({ $($yes:tt)* } { $($no:tt)* }) => { $($no)* }; }

#[cfg(test)]
mod tests {
    use crate::engines;

    /// `if_engine!` keeps code exactly for the engines that `engines::built_in` names: the
    /// macros and the registry read the same features.
    #[test]
    fn if_engine_keeps_the_code_of_the_engines_built_in() {
        let built = engines::built_in();
        let kept = [
            ("wasmtime", crate::if_engine!(wasmtime { true } else { false })),
            ("wasmer", crate::if_engine!(wasmer { true } else { false })),
            ("wasmer-singlepass", crate::if_engine!(wasmer_singlepass { true } else { false })),
            ("null", crate::if_engine!(null { true } else { false })),
        ];
        for (name, kept) in kept {
            assert_eq!(kept, built.contains(&name), "{name}");
        }
        // Several names: the code once if any of them is built in (as statements here).
        let mut count = 0;
        crate::if_engine!(wasmer | wasmer_singlepass | null {
            count += 1;
        });
        let any = ["wasmer", "wasmer-singlepass", "null"].iter().any(|n| built.contains(n));
        assert_eq!(count, usize::from(any));
    }
}
