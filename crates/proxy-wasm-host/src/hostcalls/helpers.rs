//! The two `env` functions the C++ host links into every module besides the Proxy-Wasm ABI
//! (`src/exports.cc` `pthread_equal` and `emscripten_notify_memory_growth`, registered by
//! `src/wasm.cc` `WasmBase::registerCallbacks` for every module, never restricted): shims that
//! Emscripten-built plugins import. Neither has a status.

use crate::{HostCx, Trap};

/// `env.pthread_equal`: 1 if the two thread handles are the same word, else 0. A Wasm plugin
/// has one thread, so this is all Emscripten's pthread shim needs (as `exports.cc`
/// `pthread_equal`).
pub fn pthread_equal(_cx: &mut dyn HostCx, left: u32, right: u32) -> Result<i32, Trap> {
    Ok(i32::from(left == right))
}

/// `env.emscripten_notify_memory_growth`: Emscripten's notice that linear memory grew. Nothing
/// to do: the host reads memory through the engine each time (as `exports.cc`, a no-op).
pub fn emscripten_notify_memory_growth(_cx: &mut dyn HostCx, _memory_index: u32) -> Result<(), Trap> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::hostcalls::testing::TestCx;
    use crate::hostcalls::{emscripten_notify_memory_growth, pthread_equal};

    #[test]
    fn pthread_equal_compares_and_growth_notices_do_nothing() {
        let mut cx = TestCx::new();
        assert_eq!(pthread_equal(&mut cx, 3, 3), Ok(1));
        assert_eq!(pthread_equal(&mut cx, 3, 4), Ok(0));
        assert_eq!(pthread_equal(&mut cx, u32::MAX, u32::MAX), Ok(1));
        assert_eq!(emscripten_notify_memory_growth(&mut cx, 0), Ok(0));
        assert!(cx.mem.iter().all(|&b| b == 0));
        assert!(cx.embedder.seen.lock().unwrap().logs.is_empty());
    }
}
