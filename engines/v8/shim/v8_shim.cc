// v8_shim.cc: the C API of v8_shim.h over V8 10.2's C++ API. See the header for the model.
//
// Every entry point that touches an isolate takes its v8::Locker (re-entrant on one thread)
// and enters it, so a VM can move between threads; the shim keeps no thread-local state.

#include "v8_shim.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "libplatform/libplatform.h"
#include "v8.h"

namespace v8 {
// Exported by libnode (v8/include/v8-wasm-trap-handler-posix.h, not shipped in libnode-dev).
V8_EXPORT bool TryHandleWebAssemblyTrapPosix(int sig_code, siginfo_t* info, void* context);
}  // namespace v8

namespace {

// Stack kept below V8's stack limit for what runs past it: host functions (with their Rust
// callers) called from the deepest guest frame, and V8's own stack-overflow handling.
constexpr uintptr_t kStackReserve = 256 * 1024;
// The most stack one thread gives to guest code, as V8's own default (--stack-size, 984 KiB).
constexpr uintptr_t kStackBudget = 984 * 1024;
// Host functions of the ABI table take at most 12 parameters; more go through a vector.
constexpr int kInlineArgs = 16;
// A Wasm page.
constexpr uint64_t kPage = 64 * 1024;

void SetMessage(v8s_message* out, const std::string& text) {
  if (out == nullptr) return;
  out->ptr = static_cast<char*>(malloc(text.size() + 1));
  if (out->ptr == nullptr) {
    out->len = 0;
    return;
  }
  memcpy(out->ptr, text.data(), text.size());
  out->ptr[text.size()] = '\0';
  out->len = text.size();
}

// ---------------------------------------------------------------------------------------------
// Platform.

std::once_flag g_platform_once;
int32_t g_platform_status = V8S_BAD_REQUEST;
std::string g_platform_error;
v8::Platform* g_platform = nullptr;               // Never freed: V8 is never disposed.
v8::ArrayBuffer::Allocator* g_allocator = nullptr;  // Shared by every isolate.
struct sigaction g_previous_segv;                  // For V8S_TRAP_HANDLER_CHAINED.

// V8S_TRAP_HANDLER_CHAINED: V8 first; a fault V8 does not own goes to the handler that was
// installed before ours, each time (V8's own handler gives up for good after one foreign fault).
void ChainedSegvHandler(int sig, siginfo_t* info, void* context) {
  if (v8::TryHandleWebAssemblyTrapPosix(sig, info, context)) return;
  const struct sigaction& prev = g_previous_segv;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
    // Nobody else wants it: restore the default and return, so the fault repeats and kills
    // the process as it would have without us.
    signal(sig, SIG_DFL);
    return;
  }
  prev.sa_handler(sig);
}

void InitPlatform(const char* flags, size_t flags_len, int32_t trap_handler) {
  if (trap_handler < V8S_TRAP_HANDLER_OFF || trap_handler > V8S_TRAP_HANDLER_CHAINED) {
    g_platform_error = "unknown trap-handler mode " + std::to_string(trap_handler);
    return;
  }
  if (flags_len > 0) v8::V8::SetFlagsFromString(flags, flags_len);
  if (trap_handler == V8S_TRAP_HANDLER_CHAINED) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = ChainedSegvHandler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, &g_previous_segv) != 0) {
      g_platform_error = "could not install the SIGSEGV handler for V8's trap handler";
      return;
    }
  }
  if (trap_handler != V8S_TRAP_HANDLER_OFF &&
      !v8::V8::EnableWebAssemblyTrapHandler(trap_handler == V8S_TRAP_HANDLER_V8)) {
    g_platform_error = "V8 could not enable its WebAssembly trap handler";
    return;
  }
  g_platform = v8::platform::NewDefaultPlatform().release();
  v8::V8::InitializePlatform(g_platform);
  // Checks the headers' build configuration (pointer compression, sandbox) against libnode's.
  if (!v8::V8::Initialize()) {
    g_platform_error = "v8::V8::Initialize failed";
    return;
  }
  g_allocator = v8::ArrayBuffer::Allocator::NewDefaultAllocator();
  g_platform_status = V8S_OK;
}

// ---------------------------------------------------------------------------------------------
// Helpers over an entered isolate.

v8::Local<v8::String> Str(v8::Isolate* isolate, const char* ptr, size_t len) {
  // Wasm names are UTF-8 (the Rust side passes &str); an over-long name cannot come from a
  // valid module.
  return v8::String::NewFromUtf8(isolate, ptr, v8::NewStringType::kNormal, static_cast<int>(len))
      .FromMaybe(v8::String::Empty(isolate));
}

v8::Local<v8::String> Str(v8::Isolate* isolate, const char* text) {
  return Str(isolate, text, strlen(text));
}

// "RuntimeError: unreachable", "LinkError: WebAssembly.Instance(): ...", ...
std::string ExceptionText(v8::Isolate* isolate, v8::Local<v8::Context> context,
                          const v8::TryCatch& caught) {
  if (caught.HasTerminated()) return "execution terminated";
  v8::Local<v8::Value> exception = caught.Exception();
  if (exception.IsEmpty()) return "unknown exception";
  v8::TryCatch inner(isolate);  // ToString of an Error runs Error.prototype.toString.
  v8::Local<v8::String> text;
  if (!exception->ToString(context).ToLocal(&text)) return "exception (no message)";
  v8::String::Utf8Value utf8(isolate, text);
  return *utf8 != nullptr ? std::string(*utf8, utf8.length()) : "exception (no message)";
}

// A property of the global `WebAssembly` object (a constructor).
v8::MaybeLocal<v8::Function> WebAssemblyCtor(v8::Isolate* isolate, v8::Local<v8::Context> context,
                                             const char* name) {
  v8::Local<v8::Value> wasm, ctor;
  if (!context->Global()->Get(context, Str(isolate, "WebAssembly")).ToLocal(&wasm) ||
      !wasm->IsObject() ||
      !wasm.As<v8::Object>()->Get(context, Str(isolate, name)).ToLocal(&ctor) ||
      !ctor->IsFunction()) {
    return {};
  }
  return ctor.As<v8::Function>();
}

// The process-wide isolate modules are compiled in (under its Locker, from any thread).
struct CompileIsolate {
  v8::Isolate* isolate;
  v8::Global<v8::Context> context;
};

CompileIsolate* GetCompileIsolate() {
  static CompileIsolate* compile = [] {
    v8::Isolate::CreateParams params;
    params.array_buffer_allocator = g_allocator;
    auto* c = new CompileIsolate{v8::Isolate::New(params), {}};
    v8::Locker locker(c->isolate);
    v8::Isolate::Scope isolate_scope(c->isolate);
    v8::HandleScope handles(c->isolate);
    c->context.Reset(c->isolate, v8::Context::New(c->isolate));
    return c;
  }();
  return compile;
}

// The lowest address of the running thread's stack (0 if unknown), looked up once per thread:
// for the main thread pthread_getattr_np reads /proc/self/maps.
uintptr_t ThreadStackLow() {
  thread_local uintptr_t low = [] {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return uintptr_t{0};
    void* addr = nullptr;
    size_t size = 0;
    int got = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    return got == 0 ? reinterpret_cast<uintptr_t>(addr) : uintptr_t{0};
  }();
  return low;
}

// Sets the running thread's stack limit in `isolate` from the thread's real stack: at most
// kStackBudget below here, never closer than kStackReserve to the stack's end. V8's default
// takes kStackBudget below wherever the thread first locked the isolate, which can lie past
// the end of a small thread stack (a 512 KiB thread, or a 2 MiB one entered deep down): a
// segfault instead of a RangeError. V8 keeps the limit per isolate and thread (also across
// Lockers), so once per thread switch is enough.
void SetThreadStackLimit(v8::Isolate* isolate) {
  uintptr_t low = ThreadStackLow();
  if (low == 0) return;
  uintptr_t here = reinterpret_cast<uintptr_t>(&low);
  uintptr_t floor = low + kStackReserve;
  uintptr_t limit = here > kStackBudget ? here - kStackBudget : 0;
  isolate->SetStackLimit(limit > floor ? limit : floor);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Objects.

struct v8s_module {
  v8::CompiledWasmModule compiled;
};

// What v8s_interrupt_fire needs, shared by the VM and its handles. `running` and `requested`
// change only under `mu`, so an interrupt either lands in the call that is running or is
// dropped: it cannot stay pending in the isolate for a later call.
struct InterruptState {
  std::mutex mu;
  v8::Isolate* isolate = nullptr;  // Null once the VM is freed.
  bool running = false;            // An outermost call is under way.
  bool requested = false;          // Fired during the running call.
};

struct v8s_interrupt {
  std::shared_ptr<InterruptState> state;
};

struct Binding {
  v8s_vm* vm;
  uint32_t row;
};

struct v8s_vm {
  v8::Isolate* isolate = nullptr;
  v8::Global<v8::Context> context;
  v8::Global<v8::Object> exports;
  v8::Global<v8::Object> memory;  // A WebAssembly.Memory, or empty.
  uint64_t memory_maximum_pages = 0;  // The module's own maximum.
  uint64_t memory_limit_pages = 0;    // The VM's limit.
  v8::Global<v8::Function> noop;  // For Unwind; made at the first host trap.
  std::vector<v8::Global<v8::Function>> funcs;
  std::unique_ptr<Binding[]> bindings;  // Pointed at by the host functions' External data.
  std::shared_ptr<InterruptState> interrupt = std::make_shared<InterruptState>();
  v8s_host_fn host = nullptr;
  void* data = nullptr;
  bool instantiated = false;
  int depth = 0;              // Guest calls on the stack (> 1 when re-entered from the host).
  bool host_trapped = false;  // A host callback trapped in the running outermost call.
  bool terminated = false;    // The running outermost call was interrupted.
  // A re-entered call (the guest allocator, from a host function) trapped: the outermost call
  // fails with its message even if the host function goes on.
  bool reentry_failed = false;
  std::string reentry_message;
  bool mem_valid = false;     // mem_base and mem_len describe the memory now.
  uint8_t* mem_base = nullptr;
  size_t mem_len = 0;
  std::thread::id stack_thread;  // The thread whose stack limit was set last.
};

namespace {

// Locks and enters the VM's isolate and context for one entry point.
class VmScope {
 public:
  explicit VmScope(v8s_vm* vm)
      : locker_(vm->isolate),
        isolate_scope_(vm->isolate),
        handles_(vm->isolate),
        context_(vm->context.Get(vm->isolate)),
        context_scope_(context_) {
    std::thread::id me = std::this_thread::get_id();
    if (vm->stack_thread != me) {
      SetThreadStackLimit(vm->isolate);
      vm->stack_thread = me;
    }
  }
  v8::Local<v8::Context> context() const { return context_; }

 private:
  v8::Locker locker_;
  v8::Isolate::Scope isolate_scope_;
  v8::HandleScope handles_;
  v8::Local<v8::Context> context_;
  v8::Context::Scope context_scope_;
};

// Opens an outermost call: interrupts from now on land in it.
void BeginOutermost(v8s_vm* vm) {
  vm->host_trapped = false;
  vm->terminated = false;
  vm->reentry_failed = false;
  vm->reentry_message.clear();
  std::lock_guard<std::mutex> lock(vm->interrupt->mu);
  vm->interrupt->running = true;
  vm->interrupt->requested = false;
}

// Closes an outermost call: later interrupts are dropped. Whether one landed in it.
bool EndOutermost(v8s_vm* vm) {
  std::lock_guard<std::mutex> lock(vm->interrupt->mu);
  vm->interrupt->running = false;
  bool requested = vm->interrupt->requested;
  vm->interrupt->requested = false;
  return requested;
}

bool InterruptRequested(v8s_vm* vm) {
  std::lock_guard<std::mutex> lock(vm->interrupt->mu);
  return vm->interrupt->requested;
}

// Whether the running outermost call has failed already (and the guest must unwind).
bool Failed(const v8s_vm* vm) { return vm->host_trapped || vm->terminated || vm->reentry_failed; }

// The status of guest code that just ran (a call, or instantiation with its start function),
// `outermost` or re-entered from a host function. A failure of a re-entered call fails the
// outermost one too. An outermost call clears any termination still pending in the isolate,
// so that the next call starts clean.
int32_t Settle(v8s_vm* vm, v8::Local<v8::Context> context, const v8::TryCatch& caught,
               bool outermost, v8s_message* error) {
  vm->mem_valid = false;
  bool interrupted = outermost ? EndOutermost(vm) : InterruptRequested(vm);
  if (interrupted || (caught.HasTerminated() && !vm->host_trapped && !vm->reentry_failed)) {
    vm->terminated = true;
  }
  int32_t status = V8S_OK;
  std::string message;
  if (vm->host_trapped) {
    status = V8S_HOST_TRAP;
  } else if (vm->terminated) {
    status = V8S_TERMINATED;
  } else if (vm->reentry_failed) {
    status = V8S_EXCEPTION;
    message = vm->reentry_message;
  } else if (caught.HasCaught()) {
    status = V8S_EXCEPTION;
    message = ExceptionText(vm->isolate, context, caught);
    if (!outermost) {
      vm->reentry_failed = true;
      vm->reentry_message = message;
    }
  }
  if (status == V8S_EXCEPTION) SetMessage(error, message);
  if (outermost && (interrupted || Failed(vm) || caught.HasTerminated())) {
    vm->isolate->CancelTerminateExecution();
  }
  return status;
}

// Stops the guest from inside a host callback, at once and uncatchably: a termination is
// requested, then a no-op JS function is called, whose entry stack check turns the request
// into the termination exception (a wasm `catch_all` cannot catch it, unlike a thrown JS
// exception; without the call the guest would run on to its next loop or call). The
// outermost call cancels the termination.
bool isolate_terminating(const v8s_vm* vm) { return vm->isolate->IsExecutionTerminating(); }

void Unwind(v8s_vm* vm) {
  v8::Isolate* isolate = vm->isolate;
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  if (vm->noop.IsEmpty() && !isolate->IsExecutionTerminating()) {
    v8::Local<v8::Script> script;
    v8::Local<v8::Value> fn;
    if (v8::Script::Compile(context, Str(isolate, "(function () {})")).ToLocal(&script) &&
        script->Run(context).ToLocal(&fn) && fn->IsFunction()) {
      vm->noop.Reset(isolate, fn.As<v8::Function>());
    }
  }
  isolate->TerminateExecution();
  if (!vm->noop.IsEmpty() && !isolate->IsExecutionTerminating()) {
    v8::MaybeLocal<v8::Value> ignored =
        vm->noop.Get(isolate)->Call(context, v8::Undefined(isolate), 0, nullptr);
    (void)ignored;
  }
  if (!isolate->IsExecutionTerminating()) {
    // Not expected: unwind with an exception at least (catchable by a guest catch_all).
    isolate->ThrowException(v8::Exception::Error(Str(isolate, "host trap")));
  }
}

// memory.grow, for the V8S_ROW_MEMORY_GROW import: the old size in pages, or -1 past the
// module's maximum or the VM's limit (the host is told of the latter), or when V8 cannot
// allocate. Grows through the memory object's JS `grow` (the public API has no other).
int32_t GrowMemory(v8s_vm* vm, const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (vm->memory.IsEmpty() || info.Length() < 1 || !info[0]->IsInt32()) return -1;
  v8::Isolate* isolate = vm->isolate;
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  // memory.grow's operand is unsigned.
  uint32_t delta = static_cast<uint32_t>(info[0].As<v8::Int32>()->Value());
  v8::Local<v8::Object> memory = vm->memory.Get(isolate);
  uint64_t current = v8::WasmMemoryObject::Cast(*memory)->Buffer()->ByteLength() / kPage;
  uint64_t requested = current + delta;
  if (requested > vm->memory_maximum_pages) return -1;
  if (requested > vm->memory_limit_pages) {
    uint64_t bytes = requested * kPage;
    int32_t ignored = 0;
    vm->host(vm->data, V8S_ROW_MEMORY_REFUSED, &bytes, 1, &ignored);
    return -1;
  }
  v8::TryCatch caught(isolate);
  v8::Local<v8::Value> grow;
  v8::Local<v8::Value> old;
  v8::Local<v8::Value> argv[1] = {v8::Integer::NewFromUnsigned(isolate, delta)};
  vm->mem_valid = false;
  if (memory->Get(context, Str(isolate, "grow")).ToLocal(&grow) && grow->IsFunction() &&
      grow.As<v8::Function>()->Call(context, memory, 1, argv).ToLocal(&old) && old->IsUint32()) {
    return static_cast<int32_t>(old.As<v8::Uint32>()->Value());
  }
  // A RangeError when V8 cannot allocate: -1, as Wasm specifies. A termination goes on.
  if (caught.HasTerminated()) caught.ReThrow();
  return -1;
}

// The V8 callback of every host function: converts the arguments, calls the host, returns
// its result or unwinds the guest.
void HostTrampoline(const v8::FunctionCallbackInfo<v8::Value>& info) {
  const Binding* binding = static_cast<const Binding*>(info.Data().As<v8::External>()->Value());
  v8s_vm* vm = binding->vm;
  vm->mem_valid = false;  // The guest ran (and may have grown memory) since the last look.
  if (Failed(vm)) return Unwind(vm);
  if (binding->row == V8S_ROW_MEMORY_GROW) {
    int32_t old = GrowMemory(vm, info);
    vm->mem_valid = false;
    if (Failed(vm)) return Unwind(vm);
    if (!isolate_terminating(vm)) info.GetReturnValue().Set(old);
    return;
  }
  int n = info.Length();
  uint64_t inline_args[kInlineArgs];
  std::vector<uint64_t> many;
  uint64_t* args = inline_args;
  if (n > kInlineArgs) {
    many.resize(n);
    args = many.data();
  }
  for (int i = 0; i < n; i++) {
    v8::Local<v8::Value> v = info[i];
    if (v->IsBigInt()) {
      args[i] = static_cast<uint64_t>(v.As<v8::BigInt>()->Int64Value());
    } else if (v->IsInt32()) {
      args[i] = static_cast<uint32_t>(v.As<v8::Int32>()->Value());
    } else {
      args[i] = 0;  // f32/f64: no host function of the ABI takes one.
    }
  }
  int32_t result = 0;
  int32_t trapped = vm->host(vm->data, binding->row, args, static_cast<size_t>(n), &result);
  vm->mem_valid = false;  // The host may have re-entered the guest (its allocator).
  if (trapped != 0) vm->host_trapped = true;
  // A re-entered call that failed fails this one too, even if the host swallowed the error.
  if (Failed(vm)) return Unwind(vm);
  info.GetReturnValue().Set(result);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The C API.

extern "C" {

V8S_EXPORT int32_t v8s_platform_init(const char* flags, size_t flags_len, int32_t trap_handler,
                          v8s_message* error) {
  std::call_once(g_platform_once, InitPlatform, flags, flags_len, trap_handler);
  if (g_platform_status != V8S_OK) SetMessage(error, g_platform_error);
  return g_platform_status;
}

V8S_EXPORT v8s_module* v8s_module_compile(const uint8_t* bytes, size_t len, v8s_message* error) {
  if (g_platform_status != V8S_OK) {
    SetMessage(error, "V8 is not initialised (v8s_platform_init)");
    return nullptr;
  }
  CompileIsolate* c = GetCompileIsolate();
  v8::Locker locker(c->isolate);
  v8::Isolate::Scope isolate_scope(c->isolate);
  v8::HandleScope handles(c->isolate);
  v8::Local<v8::Context> context = c->context.Get(c->isolate);
  v8::Context::Scope context_scope(context);
  v8::TryCatch caught(c->isolate);
  v8::Local<v8::WasmModuleObject> module;
  if (!v8::WasmModuleObject::Compile(c->isolate, v8::MemorySpan<const uint8_t>(bytes, len))
           .ToLocal(&module)) {
    SetMessage(error, ExceptionText(c->isolate, context, caught));
    return nullptr;
  }
  return new v8s_module{module->GetCompiledModule()};
}

V8S_EXPORT void v8s_module_free(v8s_module* module) { delete module; }

V8S_EXPORT v8s_vm* v8s_vm_new(v8s_host_fn host, void* vm_data, v8s_message* error) {
  if (g_platform_status != V8S_OK) {
    SetMessage(error, "V8 is not initialised (v8s_platform_init)");
    return nullptr;
  }
  v8::Isolate::CreateParams params;
  params.array_buffer_allocator = g_allocator;
  auto* vm = new v8s_vm;
  vm->host = host;
  vm->data = vm_data;
  vm->isolate = v8::Isolate::New(params);
  vm->interrupt->isolate = vm->isolate;
  {
    v8::Locker locker(vm->isolate);
    v8::Isolate::Scope isolate_scope(vm->isolate);
    v8::HandleScope handles(vm->isolate);
    vm->context.Reset(vm->isolate, v8::Context::New(vm->isolate));
  }
  return vm;
}

V8S_EXPORT void v8s_vm_free(v8s_vm* vm) {
  if (vm == nullptr) return;
  {
    // From here on, firing a handle does nothing.
    std::lock_guard<std::mutex> lock(vm->interrupt->mu);
    vm->interrupt->isolate = nullptr;
    vm->interrupt->running = false;
  }
  {
    v8::Locker locker(vm->isolate);
    v8::Isolate::Scope isolate_scope(vm->isolate);
    vm->funcs.clear();
    vm->memory.Reset();
    vm->noop.Reset();
    vm->exports.Reset();
    vm->context.Reset();
  }
  vm->isolate->Dispose();
  delete vm;
}

V8S_EXPORT int32_t v8s_vm_instantiate(v8s_vm* vm, const v8s_module* module, const v8s_func_import* funcs,
                           size_t nfuncs, const v8s_memory_import* memory, v8s_message* error) {
  if (vm->instantiated) {
    SetMessage(error, "the VM already has an instance");
    return V8S_BAD_REQUEST;
  }
  vm->instantiated = true;
  VmScope scope(vm);
  v8::Isolate* isolate = vm->isolate;
  v8::Local<v8::Context> context = scope.context();
  v8::TryCatch caught(isolate);
  auto fail = [&](const char* what) {
    std::string text = what;
    if (caught.HasCaught()) text += ": " + ExceptionText(isolate, context, caught);
    SetMessage(error, text);
    return V8S_BAD_REQUEST;
  };

  // The import object: { module: { name: function or memory } }.
  v8::Local<v8::Object> imports = v8::Object::New(isolate);
  auto namespace_of = [&](const char* name, size_t len) -> v8::MaybeLocal<v8::Object> {
    v8::Local<v8::String> key = Str(isolate, name, len);
    v8::Local<v8::Value> existing;
    if (!imports->Get(context, key).ToLocal(&existing)) return {};
    if (existing->IsObject()) return existing.As<v8::Object>();
    v8::Local<v8::Object> created = v8::Object::New(isolate);
    if (imports->Set(context, key, created).IsNothing()) return {};
    return created;
  };
  vm->bindings.reset(new Binding[nfuncs]);
  for (size_t i = 0; i < nfuncs; i++) {
    const v8s_func_import& f = funcs[i];
    vm->bindings[i] = Binding{vm, f.row};
    v8::Local<v8::FunctionTemplate> tmpl = v8::FunctionTemplate::New(
        isolate, HostTrampoline, v8::External::New(isolate, &vm->bindings[i]),
        v8::Local<v8::Signature>(), 0, v8::ConstructorBehavior::kThrow);
    v8::Local<v8::Function> fn;
    v8::Local<v8::Object> ns;
    if (!tmpl->GetFunction(context).ToLocal(&fn) ||
        !namespace_of(f.module, f.module_len).ToLocal(&ns) ||
        ns->Set(context, Str(isolate, f.name, f.name_len), fn).IsNothing()) {
      return fail("building the import object failed");
    }
  }
  v8::Local<v8::Object> created_memory;
  if (memory != nullptr) {
    v8::Local<v8::Function> ctor;
    v8::Local<v8::Object> descriptor = v8::Object::New(isolate);
    v8::Local<v8::Object> ns;
    uint32_t cap = memory->maximum_pages < memory->limit_pages ? memory->maximum_pages
                                                               : memory->limit_pages;
    vm->memory_maximum_pages = memory->maximum_pages;
    vm->memory_limit_pages = memory->limit_pages;
    if (!WebAssemblyCtor(isolate, context, "Memory").ToLocal(&ctor) ||
        descriptor
            ->Set(context, Str(isolate, "initial"),
                  v8::Integer::NewFromUnsigned(isolate, memory->initial_pages))
            .IsNothing() ||
        descriptor
            ->Set(context, Str(isolate, "maximum"),
                  v8::Integer::NewFromUnsigned(isolate, cap))
            .IsNothing()) {
      return fail("building the memory descriptor failed");
    }
    v8::Local<v8::Value> argv[1] = {descriptor};
    if (!ctor->NewInstance(context, 1, argv).ToLocal(&created_memory)) {
      // RangeError when the initial size cannot be allocated.
      SetMessage(error, ExceptionText(isolate, context, caught));
      return V8S_EXCEPTION;
    }
    if (!namespace_of(memory->module, memory->module_len).ToLocal(&ns) ||
        ns->Set(context, Str(isolate, memory->name, memory->name_len), created_memory)
            .IsNothing()) {
      return fail("building the import object failed");
    }
    // Known before the instance is made: a start function's memory.grow needs it.
    vm->memory.Reset(isolate, created_memory);
  }

  v8::Local<v8::WasmModuleObject> module_object;
  v8::Local<v8::Function> instance_ctor;
  if (!v8::WasmModuleObject::FromCompiledModule(isolate, module->compiled)
           .ToLocal(&module_object) ||
      !WebAssemblyCtor(isolate, context, "Instance").ToLocal(&instance_ctor)) {
    return fail("re-creating the compiled module in the VM's isolate failed");
  }

  // new WebAssembly.Instance(module, imports): links (LinkError) and runs the start function.
  BeginOutermost(vm);
  vm->depth++;
  v8::Local<v8::Value> argv[2] = {module_object, imports};
  v8::Local<v8::Object> instance;
  bool made = instance_ctor->NewInstance(context, 2, argv).ToLocal(&instance);
  vm->depth--;
  int32_t status = Settle(vm, context, caught, /*outermost=*/true, error);
  if (status != V8S_OK) return status;
  if (!made) return fail("WebAssembly.Instance failed without an exception");

  v8::Local<v8::Value> exports;
  if (!instance->Get(context, Str(isolate, "exports")).ToLocal(&exports) || !exports->IsObject()) {
    return fail("the instance has no exports object");
  }
  vm->exports.Reset(isolate, exports.As<v8::Object>());
  if (created_memory.IsEmpty()) {
    // No memory import: the guest memory is the module's own, if it exports it as `memory`.
    v8::Local<v8::Value> exported;
    if (exports.As<v8::Object>()->Get(context, Str(isolate, "memory")).ToLocal(&exported) &&
        exported->IsWasmMemoryObject()) {
      vm->memory.Reset(isolate, exported.As<v8::Object>());
    }
  }
  return V8S_OK;
}

V8S_EXPORT int32_t v8s_vm_export(v8s_vm* vm, const char* name, size_t name_len) {
  if (vm->exports.IsEmpty()) return -1;
  VmScope scope(vm);
  v8::Local<v8::Value> value;
  // The exports object is frozen and has no getters: no guest or JS code runs here.
  if (!vm->exports.Get(vm->isolate)
           ->Get(scope.context(), Str(vm->isolate, name, name_len))
           .ToLocal(&value) ||
      !value->IsFunction()) {
    return -1;
  }
  vm->funcs.emplace_back(vm->isolate, value.As<v8::Function>());
  return static_cast<int32_t>(vm->funcs.size() - 1);
}

V8S_EXPORT int32_t v8s_vm_call(v8s_vm* vm, int32_t func, const int32_t* args, size_t nargs, int32_t* result,
                    int32_t* has_result, v8s_message* error) {
  *result = 0;
  *has_result = 0;
  if (func < 0 || static_cast<size_t>(func) >= vm->funcs.size() || nargs > kInlineArgs) {
    SetMessage(error, "no such function handle, or too many arguments");
    return V8S_BAD_REQUEST;
  }
  bool outermost = vm->depth == 0;
  // Re-entered from a host function after the call already failed: run no guest code.
  if (!outermost && vm->host_trapped) return V8S_HOST_TRAP;
  if (!outermost && vm->terminated) return V8S_TERMINATED;
  if (!outermost && vm->reentry_failed) {
    SetMessage(error, vm->reentry_message);
    return V8S_EXCEPTION;
  }
  VmScope scope(vm);
  v8::Isolate* isolate = vm->isolate;
  v8::Local<v8::Context> context = scope.context();
  v8::TryCatch caught(isolate);
  v8::Local<v8::Value> argv[kInlineArgs];
  for (size_t i = 0; i < nargs; i++) argv[i] = v8::Integer::New(isolate, args[i]);
  v8::Local<v8::Function> fn = vm->funcs[func].Get(isolate);
  if (outermost) BeginOutermost(vm);
  vm->depth++;
  v8::MaybeLocal<v8::Value> returned =
      fn->Call(context, v8::Undefined(isolate), static_cast<int>(nargs), argv);
  vm->depth--;
  int32_t status = Settle(vm, context, caught, outermost, error);
  v8::Local<v8::Value> value;
  if (status == V8S_OK && returned.ToLocal(&value) && value->IsInt32()) {
    *result = value.As<v8::Int32>()->Value();
    *has_result = 1;
  }
  return status;
}

V8S_EXPORT void v8s_vm_memory(v8s_vm* vm, uint8_t** base, size_t* len) {
  if (!vm->mem_valid) {
    vm->mem_base = nullptr;
    vm->mem_len = 0;
    if (!vm->memory.IsEmpty()) {
      v8::Locker locker(vm->isolate);
      v8::Isolate::Scope isolate_scope(vm->isolate);
      v8::HandleScope handles(vm->isolate);
      v8::Local<v8::Object> memory = vm->memory.Get(vm->isolate);
      std::shared_ptr<v8::BackingStore> store =
          v8::WasmMemoryObject::Cast(*memory)->Buffer()->GetBackingStore();
      vm->mem_base = static_cast<uint8_t*>(store->Data());
      vm->mem_len = store->ByteLength();
    }
    vm->mem_valid = true;
  }
  *base = vm->mem_base;
  *len = vm->mem_len;
}

V8S_EXPORT v8s_interrupt* v8s_vm_interrupt(v8s_vm* vm) { return new v8s_interrupt{vm->interrupt}; }

V8S_EXPORT void v8s_interrupt_fire(const v8s_interrupt* handle) {
  InterruptState& state = *handle->state;
  std::lock_guard<std::mutex> lock(state.mu);
  if (state.isolate != nullptr && state.running && !state.requested) {
    state.requested = true;
    state.isolate->TerminateExecution();
  }
}

V8S_EXPORT void v8s_interrupt_free(v8s_interrupt* handle) { delete handle; }

V8S_EXPORT void v8s_message_free(v8s_message* message) {
  if (message == nullptr) return;
  free(message->ptr);
  message->ptr = nullptr;
  message->len = 0;
}

}  // extern "C"
