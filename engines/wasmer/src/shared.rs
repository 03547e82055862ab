//! [`Shared`]: what an engine, its modules and its instances share.

use std::sync::{Arc, Mutex};

use crate::stop::StopCheck;

/// What the engine, its modules and instances share.
pub(crate) struct Shared {
    /// Wasmer's engine, with our middleware and tunables.
    pub(crate) engine: wasmer::Engine,
    /// The engine's name.
    pub(crate) name: &'static str,
    /// The middleware, whose per-module state makes compiles sequential.
    pub(crate) stop_check: Arc<StopCheck>,
    /// Held while a module compiles.
    pub(crate) compile_lock: Mutex<()>,
}
