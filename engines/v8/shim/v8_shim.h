/*
 * v8_shim.h: the narrow C API the proxy-wasm host's V8 engine uses, over V8 10.2's C++ API
 * (Debian's libnode108 exports no `wasm_*` C API).
 *
 * Model
 * - One platform per process (`v8s_platform_init`), never disposed: V8::Dispose() hangs while a
 *   compiled module is alive, and the process exit frees everything anyway.
 * - A module is compiled once, in a process-wide compile isolate, and shared by every VM
 *   (`CompiledWasmModule`, re-created in each VM's isolate with `FromCompiledModule`).
 * - One isolate (and one context) per VM, so that a terminate hits only that VM. Every entry
 *   point takes the isolate's `v8::Locker`: a VM may be used from any thread, one at a time.
 * - Host functions: every function import calls one host callback (`v8s_host_fn`) with the
 *   import's table row and the VM's data pointer.
 *
 * Threads: a `v8s_vm` and its functions are used by one thread at a time (any thread). Only
 * `v8s_interrupt_fire` may be called from another thread while the VM runs.
 *
 * Replacing the shim: these thirteen calls are all the Rust side (`src/sys/`) uses. A backend on
 * the `v8` crate (rusty_v8), where its prebuilt download works, implements the same calls with
 * the same V8 API (`v8::Locker`, `WasmModuleObject::compile` / `get_compiled_module` /
 * `from_compiled_module`, `FunctionTemplate` with `External` data, `TerminateExecution` /
 * `CancelTerminateExecution`, `SetStackLimit`), keeping the statuses, the reserved rows and the
 * rules below (one isolate per VM, unwinding after a host trap, interrupts that land only in the
 * running call).
 *
 * Strings are (pointer, length) pairs, not NUL-terminated. Messages (`v8s_message`) are
 * allocated by the shim with malloc and freed with `v8s_message_free`.
 */
#ifndef PROXY_WASM_V8_SHIM_H
#define PROXY_WASM_V8_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shim is built with hidden visibility; only the C API is exported. */
#define V8S_EXPORT __attribute__((visibility("default")))

typedef struct v8s_module v8s_module;
typedef struct v8s_vm v8s_vm;
typedef struct v8s_interrupt v8s_interrupt;

/* A message owned by the caller once set: free it with v8s_message_free. */
typedef struct {
  char* ptr;
  size_t len;
} v8s_message;

/* The outcome of an entry point that runs or prepares guest code. */
enum {
  V8S_OK = 0,
  /* A Wasm trap or a JS exception (LinkError, CompileError, RangeError for a stack overflow,
   * ...): the message is V8's, for example "RuntimeError: unreachable". */
  V8S_EXCEPTION = 1,
  /* The call was stopped by v8s_interrupt_fire. */
  V8S_TERMINATED = 2,
  /* A host callback reported a trap during the call (the host keeps its reason). */
  V8S_HOST_TRAP = 3,
  /* The request itself is wrong (no such function, an argument of the wrong type, a VM without
   * an instance, ...): the message says which. */
  V8S_BAD_REQUEST = 4,
};

/* The one host callback. `vm_data` is the pointer given to v8s_vm_new, `row` the row given for
 * the import, `args` the Wasm arguments: an i32 zero-extended to 64 bits, an i64 (a BigInt in
 * V8) as its bits. Writes the function's i32 result (ignored for a function without result).
 * Returns 0 to go on, non-zero to trap: the guest is unwound (an uncatchable termination, so a
 * guest's own exception handler cannot resume it) and the call answers V8S_HOST_TRAP. */
typedef int32_t (*v8s_host_fn)(void* vm_data, uint32_t row, const uint64_t* args, size_t nargs,
                               int32_t* result);

/* A function import: `module`.`name` calls the host callback with `row`. */
typedef struct {
  const char* module;
  size_t module_len;
  const char* name;
  size_t name_len;
  uint32_t row;
} v8s_func_import;

/* A memory import the shim creates for the VM (`new WebAssembly.Memory`), in 64 KiB pages: its
 * initial size, the module's own declared maximum (65536 when it declares none) and the VM's
 * limit. The memory object's maximum is the smaller of the two, so V8 itself never lets the
 * memory pass the limit; memory.grow past either answers -1. */
typedef struct {
  const char* module;
  size_t module_len;
  const char* name;
  size_t name_len;
  uint32_t initial_pages;
  uint32_t maximum_pages;
  uint32_t limit_pages;
} v8s_memory_import;

/* Reserved rows.
 *
 * V8S_ROW_MEMORY_GROW: a function import `(i32) -> i32` bound to this row is not passed to the
 * host callback: it is memory.grow, done by the shim on the VM's memory (the Rust side rewrites
 * every `memory.grow` instruction into a call of such an import, because V8 10.2 has no hook
 * that tells when a grow is refused). It answers the old size in pages, or -1 when the new size
 * would pass the module's maximum or the VM's limit, or V8 cannot allocate it.
 *
 * V8S_ROW_MEMORY_REFUSED: the host callback is called with this row and one argument, the size
 * in bytes a memory.grow asked for, when the shim refused it at the VM's limit (not at the
 * module's own maximum). Its result and status are ignored. */
#define V8S_ROW_MEMORY_GROW 0xFFFFFFFFu
#define V8S_ROW_MEMORY_REFUSED 0xFFFFFFFEu

/* How guest memory accesses are bounds-checked (V8's "trap handler"). */
enum {
  /* Explicit bounds checks in the generated code; no signal handler. */
  V8S_TRAP_HANDLER_OFF = 0,
  /* Guard regions and V8's own SIGSEGV handler (V8 restores the previous handler, for good,
   * on a fault it does not own). */
  V8S_TRAP_HANDLER_V8 = 1,
  /* Guard regions and the shim's SIGSEGV handler: asks V8 first, else hands the signal to the
   * handler installed before it (for example Wasmtime's), every time. */
  V8S_TRAP_HANDLER_CHAINED = 2,
};

/* Initialises V8 once per process with `flags` (V8 command-line flags, may be empty) and the
 * bounds-check mode `trap_handler` (V8S_TRAP_HANDLER_*). Later calls do nothing and answer the
 * first call's result; their arguments are ignored. V8S_OK or V8S_BAD_REQUEST. */
V8S_EXPORT int32_t v8s_platform_init(const char* flags, size_t flags_len, int32_t trap_handler,
                          v8s_message* error);

/* Compiles and validates `bytes`. NULL on failure, with V8's message in `error`
 * (for example "CompileError: WebAssembly.Module(): expected magic word ..."). Any thread. */
V8S_EXPORT v8s_module* v8s_module_compile(const uint8_t* bytes, size_t len, v8s_message* error);
/* Frees a module; VMs instantiated from it keep their own reference. Any thread. */
V8S_EXPORT void v8s_module_free(v8s_module* module);

/* A new VM: an isolate with one context, no instance yet. `host` and `vm_data` serve every
 * host call of the VM. NULL on failure, with a message. */
V8S_EXPORT v8s_vm* v8s_vm_new(v8s_host_fn host, void* vm_data, v8s_message* error);
/* Cuts off the VM's interrupt handles, then disposes its isolate. Not during a call. */
V8S_EXPORT void v8s_vm_free(v8s_vm* vm);

/* Instantiates `module` in the VM (once per VM) through the JS `WebAssembly.Instance`
 * constructor with an import object of `funcs` and, if not NULL, `memory`. The module's start
 * function runs here, under the interrupt. The guest memory (v8s_vm_memory) is the memory
 * created for `memory`: a module's own memory reaches the shim as an import (the Rust side
 * rewrites a defined memory into one), so that each VM gets its own maximum. Without `memory`
 * it is the module's export `memory`, if any (a module compiled as it is). A missing import
 * is V8S_EXCEPTION with V8's LinkError. */
V8S_EXPORT int32_t v8s_vm_instantiate(v8s_vm* vm, const v8s_module* module, const v8s_func_import* funcs,
                           size_t nfuncs, const v8s_memory_import* memory, v8s_message* error);

/* The handle (>= 0) of the exported function `name`, resolved once; -1 if there is none. */
V8S_EXPORT int32_t v8s_vm_export(v8s_vm* vm, const char* name, size_t name_len);

/* Calls exported function `func` with i32 `args`. Writes its i32 result to `*result` and 1 to
 * `*has_result` when it returned one (0 and 0 otherwise). May be called from inside a host
 * callback (re-entrant, for the guest allocator): a failure there fails the outermost call
 * too - once the host callback returns, the guest is unwound and the outermost call answers
 * the same status and message (V8S_HOST_TRAP if the callback itself trapped). */
V8S_EXPORT int32_t v8s_vm_call(v8s_vm* vm, int32_t func, const int32_t* args, size_t nargs, int32_t* result,
                    int32_t* has_result, v8s_message* error);

/* The guest memory's base and length in bytes (NULL and 0 without a memory). Valid until the
 * guest runs again: fetch it again after any guest call or re-entrant call (memory can grow). */
V8S_EXPORT void v8s_vm_memory(v8s_vm* vm, uint8_t** base, size_t* len);

/* A handle that stops the VM's running call from any thread. It outlives the VM harmlessly:
 * once the VM is freed, firing does nothing. Free with v8s_interrupt_free. */
V8S_EXPORT v8s_interrupt* v8s_vm_interrupt(v8s_vm* vm);
/* Stops the call running now, if any (it answers V8S_TERMINATED); does nothing between calls,
 * so a late interrupt never reaches a later call. Any thread. */
V8S_EXPORT void v8s_interrupt_fire(const v8s_interrupt* handle);
V8S_EXPORT void v8s_interrupt_free(v8s_interrupt* handle);

V8S_EXPORT void v8s_message_free(v8s_message* message);

#ifdef __cplusplus
}
#endif

#endif /* PROXY_WASM_V8_SHIM_H */
