//! The host functions: the ABI table registered once per process with WAMR (every row through
//! one raw trampoline, see [`wamr::init`]), [`host_fn`], where every guest call of an import
//! lands, and [`Cx`], what the host functions see of the instance that called them.

use std::sync::LazyLock;

use abi::{Kind, HOST_FUNCTIONS};
use proxy_wasm_host::engine::call_row;
use proxy_wasm_host::{Error, GuestMemory, HostCx, Trap, VmHost, WordSize};

use crate::shared::NAME;
use crate::store::StoreData;
use crate::trap;
use crate::wamr::{self, Caller, Val};

/// WAMR's signature letter of a parameter or result kind: `I` for a 64-bit value, `i` for the
/// rest (every other kind is an `i32` in Wasm); `None` for no value.
fn letter(kind: Kind) -> Option<char> {
    kind.wasm_type().map(|t| if t == "i64" { 'I' } else { 'i' })
}

/// The WAMR signature string of a table row: `(iii)i` for `(i32, i32, i32) -> i32`, `(i)` for
/// `proc_exit`. WAMR links an import only when its type matches it.
pub(crate) fn signature(params: impl IntoIterator<Item = Kind>, result: Kind) -> String {
    let params: String = params.into_iter().filter_map(letter).collect();
    format!("({params}){}", letter(result).map(String::from).unwrap_or_default())
}

/// The table WAMR gets, once per process: every row of [`HOST_FUNCTIONS`] under each of its
/// module's import names (WASI under both), with the row index as [`wamr::HostFunc::row`]. Unit
/// tests add their own rows after the ABI's.
static TABLE: LazyLock<Vec<wamr::HostFunc<'static>>> = LazyLock::new(|| {
    let mut table = Vec::new();
    for (row, f) in HOST_FUNCTIONS.iter().enumerate() {
        // Leaked once per process: WAMR keeps pointers to its copy for as long anyway.
        let signature: &'static str = Box::leak(signature(f.params.iter().map(|p| p.kind), f.result).into_boxed_str());
        for &module in f.module.import_names() {
            table.push(wamr::HostFunc { row, module, name: f.name, signature });
        }
    }
    #[cfg(test)]
    table.extend_from_slice(crate::tests::TEST_ROWS);
    table
});

/// The process's WAMR runtime, initialised with [`TABLE`] by the first caller.
pub(crate) fn runtime() -> Result<wamr::Runtime, Error> {
    wamr::init(&TABLE).map_err(|e| Error::Instantiate { engine: NAME, message: format!("cannot start WAMR: {e}") })
}

/// Every guest call of an import of the table: the host function of `row`, through the host's
/// raw entry, with the arguments as WAMR passed them (an `i32` zero-extended, an `i64` whole).
pub(crate) fn host_fn(row: usize, caller: &mut Caller<'_, StoreData, Trap>, args: &[u64]) -> Result<i32, Trap> {
    #[cfg(test)]
    if row >= HOST_FUNCTIONS.len() {
        return crate::tests::host_fn(row, &mut Cx(caller), args);
    }
    call_row(row, WordSize::W32, &mut Cx(caller), args)
}

/// A host function's view of its caller: guest memory, host state and the guest allocator.
pub(crate) struct Cx<'a, 'b>(pub(crate) &'a mut Caller<'b, StoreData, Trap>);

impl HostCx for Cx<'_, '_> {
    fn parts(&mut self) -> (GuestMemory<'_>, &mut VmHost) {
        // Fetched again each time: a guest call in between may have grown (moved) memory.
        let (memory, data) = self.0.parts();
        let memory = if data.memory_exported { memory } else { &mut [] };
        (GuestMemory::new(memory, WordSize::W32), &mut data.host)
    }

    fn allocate(&mut self, size: u64) -> Result<u64, Trap> {
        // A `Func` is a pointer and a few words; the allocator may call host functions that
        // reach this state again, so no borrow of it is kept across the call.
        let Some(allocator) = self.0.data().allocator.clone() else { return Ok(0) };
        // A wasm32 guest cannot allocate more than 4 GiB.
        let Ok(size) = u32::try_from(size) else { return Ok(0) };
        match self.0.call(&allocator, &[Val::I32(size as i32)]) {
            Ok(Some(Val::I32(addr))) => Ok(u64::from(addr as u32)),
            Ok(_) => Ok(0),
            Err(e) => {
                let trap = trap::from_call_error(e);
                self.0.data().poisoned = Some(trap.clone());
                Err(trap)
            }
        }
    }

    fn host(&mut self) -> &mut VmHost {
        &mut self.0.data().host
    }
}

#[cfg(test)]
mod signature_tests {
    use abi::HostFunctionId;

    use super::*;

    #[test]
    fn signatures_follow_the_table() {
        let sig = |id: HostFunctionId| {
            let f = id.info();
            signature(f.params.iter().map(|p| p.kind), f.result)
        };
        assert_eq!(sig(HostFunctionId::proxy_log), "(iii)i");
        assert_eq!(sig(HostFunctionId::proxy_increment_metric), "(iI)i");
        assert_eq!(sig(HostFunctionId::proc_exit), "(i)");
        assert_eq!(sig(HostFunctionId::fd_seek), "(iIii)i");
    }
}
