//! [`WamrEngine`]: the process's WAMR runtime, with the host functions registered.

use std::sync::Arc;

use proxy_wasm_host::{Capabilities, Engine, Error, Module};

use crate::{link, start, trap};
use crate::module::WamrModule;
use crate::shared::NAME;
use crate::wamr::Runtime;

/// The WAMR engine: loads modules, which then make instances.
///
/// WAMR's runtime is one per process: the first engine made initialises it and registers every
/// host function of the ABI table; later engines share it. Cloning is cheap and every engine is
/// `Send + Sync`, used from any thread.
///
/// WAMR interprets (fast interpreter, no AOT or JIT in this build): no precompiled modules, and
/// every instance allocates its own memory.
#[derive(Clone, Copy, Debug)]
pub struct WamrEngine {
    runtime: Runtime,
}

impl WamrEngine {
    /// The engine, initialising WAMR for the process on first use.
    ///
    /// # Errors
    /// [`Error::Instantiate`] when WAMR could not start (then no engine of this process can).
    pub fn new() -> Result<Self, Error> {
        Ok(WamrEngine { runtime: link::runtime()? })
    }

    /// The WAMR runtime underneath, for example to run a baseline without the ABI layer.
    pub fn runtime(&self) -> Runtime {
        self.runtime
    }

    /// Loads `bytes` into our module type, its start section first turned into an export that
    /// the instance calls under the call deadline ([`start::take_start`]).
    pub(crate) fn load(&self, bytes: &[u8]) -> Result<WamrModule, Error> {
        let bytes = start::take_start(bytes);
        let module = self.runtime.load(&bytes).map_err(|e| Error::Compile { engine: NAME, message: trap::message(e) })?;
        Ok(WamrModule::new(module))
    }
}

impl Default for WamrEngine {
    /// [`WamrEngine::new`].
    ///
    /// # Panics
    /// If WAMR could not start.
    fn default() -> Self {
        WamrEngine::new().unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Engine for WamrEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { memory_limit: true, interrupt: true, precompiled: false, cheap_clone: false, sandboxed: true }
    }

    fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
        Ok(Arc::new(self.load(bytes)?))
    }
}
