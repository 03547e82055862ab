//! [`Shared`]: what an engine, its modules and its instances share.

use wasmtime::Linker;

use crate::store::StoreData;

/// The engine's name, as [`Engine::name`](proxy_wasm_host::Engine::name) reports it.
pub(crate) const NAME: &str = "wasmtime";

/// What the engine, its modules and instances share.
pub(crate) struct Shared {
    /// Wasmtime's engine.
    pub(crate) engine: wasmtime::Engine,
    /// Every host function of the ABI table, linked once.
    pub(crate) linker: Linker<StoreData>,
    /// Whether instances come from the pool.
    pub(crate) pooling: bool,
}
