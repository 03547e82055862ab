//! The process-wide WAMR runtime: initialised once, with one table of host functions that all
//! go through one raw trampoline.
//!
//! WAMR resolves a module's imports against the registered native symbols when the module is
//! *loaded*, and its registration list is a global without a lock. So [`init`] does everything
//! process-wide at once, under a lock, before any module can be loaded: `wasm_runtime_init`, the
//! log level, the enlarge-memory error callback, and one `wasm_runtime_register_natives_raw`
//! per module name of the table. The `NativeSymbol` arrays and their strings are leaked: WAMR
//! keeps pointers to them (and sorts the arrays in place) for the life of the process.

use std::ffi::{c_char, c_void, CString};
use std::sync::{Mutex, OnceLock};

use wamrx_sys as sys;

use crate::wamr::instance::Core;
use crate::wamr::types::{Error, GrowRefusal, ValType};

/// The most parameters a host function may have. The Proxy-Wasm ABI's widest
/// (`proxy_grpc_call`) has 12; WAMR passes up to 16 raw arguments without allocating.
pub const MAX_HOST_PARAMS: usize = 16;

/// Native stack a host function may count on: the trampoline traps with WAMR's `native stack
/// overflow` instead of calling the host function when less is left on the thread's stack. WAMR's
/// own guard is 3 KiB, enough for its interpreter but not for Rust host code; without this, a
/// guest whose allocator calls a host function that calls the allocator again, without end,
/// would overflow the thread's stack (and abort the process) instead of trapping.
pub const HOST_STACK_RESERVE: u32 = 64 * 1024;

/// One import the host provides, as given to [`init`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFunc<'a> {
    /// The number [`HostFn`](crate::wamr::HostFn) receives as `row` when the guest calls this import:
    /// typically the row of the host's own table (several imports may share one, for example a
    /// WASI function under `wasi_snapshot_preview1` and `wasi_unstable`).
    pub row: usize,
    /// Import module name: `env`, `wasi_snapshot_preview1`, ...
    pub module: &'a str,
    /// Import field name: `proxy_log`, ...
    pub name: &'a str,
    /// WAMR signature string: `(` then one letter per parameter, `i` for `i32` and `I` for
    /// `i64`, then `)`, then `i` when the function returns an `i32`. For example `(iii)i`.
    /// WAMR links an import only when its Wasm type matches this string.
    pub signature: &'a str,
}

/// A registered row, as the trampoline reads it.
#[derive(Debug)]
pub(crate) struct Row {
    /// The host's row number, passed to `HostFn`.
    pub(crate) row: usize,
    module: String,
    name: String,
    signature: String,
    /// Parameter types (`i32` or `i64`).
    pub(crate) params: Vec<ValType>,
    /// Whether it returns an `i32`.
    pub(crate) has_result: bool,
    /// What WAMR's exception says when the row's host function traps (the full trap stays on
    /// the Rust side).
    pub(crate) trap_text: CString,
    /// What WAMR's exception says when the row's host function panics.
    pub(crate) panic_text: CString,
}

impl Row {
    fn parse(f: &HostFunc<'_>) -> Result<Row, String> {
        let bad = |why: &str| {
            format!(
                "host function `{}.{}`: signature `{}` {why}",
                f.module, f.name, f.signature
            )
        };
        let inner = f
            .signature
            .strip_prefix('(')
            .ok_or_else(|| bad("does not start with `(`"))?;
        let (params, result) = inner.split_once(')').ok_or_else(|| bad("has no `)`"))?;
        let params = params
            .chars()
            .map(|c| match c {
                'i' => Ok(ValType::I32),
                'I' => Ok(ValType::I64),
                _ => Err(bad("has a parameter other than `i` (i32) or `I` (i64)")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if params.len() > MAX_HOST_PARAMS {
            return Err(bad(&format!("has more than {MAX_HOST_PARAMS} parameters")));
        }
        let has_result = match result {
            "" => false,
            "i" => true,
            _ => return Err(bad("has a result other than none or `i` (i32)")),
        };
        let text =
            |what: &str| CString::new(format!("host function `{}.{}` {what}", f.module, f.name));
        Ok(Row {
            row: f.row,
            module: f.module.to_owned(),
            name: f.name.to_owned(),
            signature: f.signature.to_owned(),
            params,
            has_result,
            trap_text: text("trapped").map_err(|_| bad("names contain a NUL byte"))?,
            panic_text: text("panicked").map_err(|_| bad("names contain a NUL byte"))?,
        })
    }

    fn same_as(&self, f: &HostFunc<'_>) -> bool {
        self.row == f.row
            && self.module == f.module
            && self.name == f.name
            && self.signature == f.signature
    }
}

/// What [`init`] registered, for the life of the process.
#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) rows: Vec<Row>,
}

static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// The registry, once [`init`] succeeded.
pub(crate) fn registry() -> Option<&'static Registry> {
    REGISTRY.get().and_then(|r| r.as_ref().ok())
}

/// Proof that the WAMR runtime is initialised: loading modules goes through it. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct Runtime {
    _private: (),
}

/// Initialises WAMR for this process, once, and registers `host_functions`: a guest's call of
/// one of these imports reaches the instance's [`HostFn`](crate::wamr::HostFn) with its
/// [`HostFunc::row`].
///
/// Thread-safe; the first call does the work. A later call with an equal table returns the same
/// runtime; with another table it fails (WAMR's registration is process-wide and modules
/// already loaded were linked against the first table). A table that is refused leaves WAMR
/// untouched; if WAMR itself failed to start, every later call fails with the same message.
///
/// Side effects on the process (WAMR's, documented in NOTES.md): WAMR installs a no-op `SIGUSR1`
/// handler and blocks `SIGUSR1` on the calling thread (its "wake up blocking operations"
/// support, unused here); its log level is set to errors, which WAMR still prints to stdout.
///
/// # Errors
/// [`Error::Init`] naming the bad row (a malformed signature, a duplicate `module.name`), or
/// saying that WAMR's own initialisation or registration failed.
pub fn init(host_functions: &[HostFunc<'_>]) -> Result<Runtime, Error> {
    let _guard = INIT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(done) = REGISTRY.get() {
        return match done {
            Err(message) => Err(Error::Init(message.clone())),
            Ok(reg)
                if reg.rows.len() == host_functions.len()
                    && reg
                        .rows
                        .iter()
                        .zip(host_functions)
                        .all(|(r, f)| r.same_as(f)) =>
            {
                Ok(Runtime { _private: () })
            }
            Ok(_) => Err(Error::Init(
                "already initialised with another host-function table".into(),
            )),
        };
    }
    // A table error leaves WAMR untouched, so a corrected table may still be given.
    let rows = parse_table(host_functions).map_err(Error::Init)?;
    let outcome = start_wamr(&rows).map(|()| Registry { rows });
    let result = match &outcome {
        Ok(_) => Ok(Runtime { _private: () }),
        Err(message) => Err(Error::Init(message.clone())),
    };
    let _ = REGISTRY.set(outcome);
    result
}

fn parse_table(host_functions: &[HostFunc<'_>]) -> Result<Vec<Row>, String> {
    let rows = host_functions
        .iter()
        .map(Row::parse)
        .collect::<Result<Vec<_>, _>>()?;
    for (i, row) in rows.iter().enumerate() {
        if rows[..i]
            .iter()
            .any(|r| r.module == row.module && r.name == row.name)
        {
            return Err(format!(
                "host function `{}.{}` appears twice in the table",
                row.module, row.name
            ));
        }
    }
    Ok(rows)
}

/// Starts WAMR and registers `rows`. Called once, under `INIT_LOCK`.
fn start_wamr(rows: &[Row]) -> Result<(), String> {
    // SAFETY: called once per process (REGISTRY is set right after, under INIT_LOCK), before any
    // other WAMR call of this crate.
    if !unsafe { sys::wasm_runtime_init() } {
        return Err("wasm_runtime_init failed".into());
    }
    // SAFETY: the runtime is initialised; these only store a level and a function pointer in
    // WAMR globals, before any module exists.
    unsafe {
        sys::wasm_runtime_set_log_level(sys::WASM_LOG_LEVEL_ERROR);
        sys::wasm_runtime_set_enlarge_mem_error_callback(
            Some(on_grow_refused),
            std::ptr::null_mut(),
        );
        // The thread manager splits a module's shadow stack (`__stack_pointer` region) between
        // the main exec env and this many possible guest threads (default 4). We never spawn
        // guest threads: 1 is the least WAMR accepts, and `Instance` then gives the whole
        // stack back to the main exec env.
        sys::wasm_runtime_set_max_thread_num(1);
    }
    let mut modules: Vec<&str> = rows.iter().map(|r| r.module.as_str()).collect();
    modules.sort_unstable();
    modules.dedup();
    for module in modules {
        let mut symbols = Vec::new();
        for (index, row) in rows.iter().enumerate().filter(|(_, r)| r.module == module) {
            symbols.push(sys::NativeSymbol {
                symbol: leak_c_string(&row.name)?,
                func_ptr: trampoline as *mut c_void,
                signature: leak_c_string(&row.signature)?,
                // The index in our table travels as the attachment: WAMR sorts the array in place.
                attachment: index as *mut c_void,
            });
        }
        let count = symbols.len() as u32;
        let symbols: &'static mut [sys::NativeSymbol] = Box::leak(symbols.into_boxed_slice());
        let name = leak_c_string(module)?;
        // SAFETY: the name, the array and every string in it are leaked, so they outlive WAMR,
        // which keeps (and sorts) them; the trampoline has the raw-native signature
        // `void (wasm_exec_env_t, uint64 *)`. No module is loaded yet (we hold INIT_LOCK and
        // `Runtime` does not exist), so nothing reads WAMR's unlocked symbol list meanwhile.
        if !unsafe { sys::wasm_runtime_register_natives_raw(name, symbols.as_mut_ptr(), count) } {
            return Err(format!(
                "WAMR could not register the host functions of module `{module}`"
            ));
        }
    }
    Ok(())
}

fn leak_c_string(s: &str) -> Result<*const c_char, String> {
    let c = CString::new(s).map_err(|_| format!("`{s}` contains a NUL byte"))?;
    Ok(Box::leak(c.into_boxed_c_str()).as_ptr())
}

impl Runtime {
    /// WAMR's version, `(2, 4, 3)` for the vendored sources.
    pub fn version(&self) -> (u32, u32, u32) {
        let (mut major, mut minor, mut patch) = (0, 0, 0);
        // SAFETY: writes three integers through valid pointers.
        unsafe { sys::wasm_runtime_get_version(&mut major, &mut minor, &mut patch) };
        (major, minor, patch)
    }
}

/// The one raw native every row of the table is registered with.
///
/// WAMR calls it on the thread running the guest, with the caller's exec env (the row index in
/// its attachment) and `args`: one 64-bit slot per Wasm parameter, of which an `i32` fills only
/// the low 32 bits; an `i32` result goes into the low 32 bits of `args[0]`.
unsafe extern "C" fn trampoline(exec_env: sys::wasm_exec_env_t, args: *mut u64) {
    // SAFETY: WAMR passes the exec env of the call that is running now.
    let (inst, index) = unsafe {
        (
            sys::wasm_runtime_get_module_inst(exec_env),
            sys::wasm_runtime_get_function_attachment(exec_env) as usize,
        )
    };
    let Some(row) = registry().and_then(|r| r.rows.get(index)) else {
        // Unreachable: only `init` registers this function, with indices of its table.
        fail(inst, c"host function with an unknown table row");
        return;
    };
    // SAFETY: every instance in this process is made by `Module::instantiate`, whose custom data
    // is its `Core` (or null while being torn down).
    let core = unsafe { sys::wasm_runtime_get_custom_data(inst) }.cast::<Core>();
    if core.is_null() {
        fail(
            inst,
            c"host function called on an instance without host state",
        );
        return;
    }
    // SAFETY: the exec env of the running call, whose stack boundary WAMR set at its start (on
    // this thread). On failure WAMR raises `native stack overflow` on the instance.
    if !unsafe { sys::wasm_runtime_detect_native_stack_overflow_size(exec_env, HOST_STACK_RESERVE) }
    {
        return;
    }
    let mut slots = [0u64; MAX_HOST_PARAMS];
    for (i, (slot, ty)) in slots.iter_mut().zip(&row.params).enumerate() {
        // SAFETY: WAMR passes one slot per parameter of the import's type, which matched this
        // row's signature when the module was linked (else the import is not linked and WAMR
        // never calls us).
        let raw = unsafe { args.add(i).read() };
        *slot = if *ty == ValType::I32 {
            u64::from(raw as u32)
        } else {
            raw
        };
    }
    // SAFETY: `core` is the live instance's state (the instance outlives its running call);
    // `dispatch` was set for its `T` and `E`.
    let result =
        unsafe { ((*core).dispatch)(core, exec_env, inst, row, &slots[..row.params.len()]) };
    if let (Some(value), true) = (result, row.has_result) {
        // SAFETY: `args` has at least one slot when the import returns a value.
        unsafe { args.write(u64::from(value as u32)) };
    }
}

/// Raises `text` as WAMR's exception on `inst`: the guest stops when the host function returns.
pub(crate) fn fail(inst: sys::wasm_module_inst_t, text: &std::ffi::CStr) {
    // SAFETY: `inst` is the instance of the running call; WAMR copies the text.
    unsafe { sys::wasm_runtime_set_exception(inst, text.as_ptr()) };
}

/// WAMR's enlarge-memory error callback (process-wide): records the refusal in the instance's
/// state, where [`Instance::grow_refusal`](crate::wamr::Instance::grow_refusal) finds it (of
/// several in one call, one at the maximum before any other, then the largest).
unsafe extern "C" fn on_grow_refused(
    inc_page_count: u32,
    current_memory_size: u64,
    _memory_index: u32,
    reason: sys::enlarge_memory_error_reason_t,
    inst: sys::wasm_module_inst_t,
    _exec_env: sys::wasm_exec_env_t,
    _user_data: *mut c_void,
) {
    if inst.is_null() {
        return;
    }
    // SAFETY: as in `trampoline`: the custom data of every instance is its `Core` or null.
    let core = unsafe { sys::wasm_runtime_get_custom_data(inst) }.cast::<Core>();
    if core.is_null() {
        return;
    }
    // SAFETY: `inst` is the live instance whose `memory.grow` failed.
    let bytes_per_page = unsafe {
        let mem = sys::wasm_runtime_get_default_memory(inst);
        if mem.is_null() {
            0
        } else {
            sys::wasm_memory_get_bytes_per_page(mem)
        }
    };
    let refusal = GrowRefusal {
        requested_pages: inc_page_count,
        current_bytes: current_memory_size,
        requested_bytes: current_memory_size
            .saturating_add(u64::from(inc_page_count).saturating_mul(bytes_per_page)),
        at_maximum: reason == sys::MAX_SIZE_REACHED,
    };
    // SAFETY: WAMR calls this on the thread running the instance's guest code (inside
    // `memory.grow`), while no Rust reference to the `Core` is alive (calls hold raw pointers).
    let kept = unsafe { &mut (*core).grow_refusal };
    // The call's most telling refusal: one at the maximum over any other, then the largest.
    let rank = |r: &GrowRefusal| (r.at_maximum, r.requested_bytes);
    if kept.is_none_or(|k| rank(&refusal) > rank(&k)) {
        *kept = Some(refusal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(signature: &str) -> Result<Vec<Row>, String> {
        parse_table(&[HostFunc {
            row: 0,
            module: "env",
            name: "f",
            signature,
        }])
    }

    #[test]
    fn signatures_are_parsed_into_parameter_types_and_a_result() {
        let rows = parse("(iIi)i").unwrap();
        assert_eq!(rows[0].params, [ValType::I32, ValType::I64, ValType::I32]);
        assert!(rows[0].has_result);
        assert!(!parse("()").unwrap()[0].has_result);
        assert_eq!(
            rows[0].trap_text.to_str().unwrap(),
            "host function `env.f` trapped"
        );
    }

    #[test]
    fn bad_rows_are_refused_naming_the_row() {
        assert_eq!(parse("(f)i").unwrap_err(), "host function `env.f`: signature `(f)i` has a parameter other than `i` (i32) or `I` (i64)");
        assert!(parse("(i)I")
            .unwrap_err()
            .contains("has a result other than none or `i` (i32)"));
        assert!(parse("ii").unwrap_err().contains("does not start with `(`"));
        assert!(parse("(ii").unwrap_err().contains("has no `)`"));
        assert!(parse(&format!("({})", "i".repeat(17)))
            .unwrap_err()
            .contains("more than 16 parameters"));
        let twice = [
            HostFunc {
                row: 0,
                module: "env",
                name: "f",
                signature: "()",
            },
            HostFunc {
                row: 1,
                module: "env",
                name: "f",
                signature: "(i)",
            },
        ];
        assert_eq!(
            parse_table(&twice).unwrap_err(),
            "host function `env.f` appears twice in the table"
        );
    }
}
