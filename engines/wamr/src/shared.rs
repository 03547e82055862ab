//! What the engine, its modules and its instances share.

/// The engine's name, as [`Engine::name`](proxy_wasm_host::Engine::name) reports it.
pub(crate) const NAME: &str = "wamr";
