// An AssemblyScript plugin on @solo-io/proxy-runtime 0.1.8, built with assemblyscript 0.14
// (the compiler that runtime is written for) by `cargo xtask build-plugins`:
//
//   asc assembly/index.ts -b sdk_as.wasm --use abort=abort_proc_exit -O
//
// as the runtime's README asks. The runtime registers root context factories by root id, so
// the plugin's root id picks the scenario (the plugin configuration is not used):
//
// | root id   | what it does |
// |-----------|--------------|
// | `headers` | reads `:path` and `x-a`; adds `x-added: 1`, replaces `x-a` with `changed`, removes `x-remove`; adds `x-response: yes` to the response |
// | `local`   | `:path` starting with `/deny`: local reply 403 `denied` with `x-deny: 1` |
// | `callout` | asks upstream `auth` (`GET /check`) through the root context; 200 resumes the request, anything else a local 403 `forbidden` with `x-auth: denied` |
// | `tick`    | ticks every 100 ms; CAS-increments shared data `ticks` and counter `ticks_total` |
// | `body`    | buffers the request body to its end, replaces `foo` with `bar` |
//
// Where the runtime has no working wrapper the plugin calls the ABI itself, as its users had
// to: shared data (the runtime's `get_shared_data`/`set_shared_data` pass the wrong pointers)
// through the runtime's own import declarations, and `proxy_set_buffer_bytes` (the runtime
// declares no setter for bodies) through a declaration of ours below.

export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, log, LogLevelValues,
  FilterHeadersStatusValues, FilterDataStatusValues, GrpcStatusValues, WasmResultValues,
  HeaderPair, stream_context, send_local_response, continue_request, Counter,
} from "@solo-io/proxy-runtime";
import { get_buffer_bytes, set_tick_period_milliseconds, BufferTypeValues } from "@solo-io/proxy-runtime/runtime";
import { free } from "@solo-io/proxy-runtime/malloc";
import * as abi from "@solo-io/proxy-runtime/imports";

// @ts-ignore: decorator
@external("env", "proxy_set_buffer_bytes")
declare function proxy_set_buffer_bytes(buffer_type: i32, start: u32, length: u32, data: usize, size: usize): u32;

function info(message: string): void {
  log(LogLevelValues.info, message);
}

function bytes(text: string): ArrayBuffer {
  return String.UTF8.encode(text);
}

function pair(key: string, value: string): HeaderPair {
  return new HeaderPair(bytes(key), bytes(value));
}

// ---- headers

class HeadersRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new HeadersFilter(context_id, this);
  }
}

class HeadersFilter extends Context {
  constructor(context_id: u32, root_context: HeadersRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const path = stream_context.headers.request.get(":path");
    const x_a = stream_context.headers.request.get("x-a");
    info("headers: :path=" + path + " x-a=" + x_a);
    stream_context.headers.request.add("x-added", "1");
    stream_context.headers.request.replace("x-a", "changed");
    stream_context.headers.request.remove("x-remove");
    info("headers: added x-added, replaced x-a, removed x-remove");
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-response", "yes");
    info("headers: added x-response");
    return FilterHeadersStatusValues.Continue;
  }
}

// ---- local

class LocalRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new LocalFilter(context_id, this);
  }
}

class LocalFilter extends Context {
  constructor(context_id: u32, root_context: LocalRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const path = stream_context.headers.request.get(":path");
    if (path.startsWith("/deny")) {
      info("local: denying " + path);
      send_local_response(403, "", bytes("denied"), [pair("x-deny", "1")], GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    info("local: allowing " + path);
    return FilterHeadersStatusValues.Continue;
  }
}

// ---- callout

class CalloutRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new CalloutFilter(context_id, this);
  }
}

class CalloutFilter extends Context {
  constructor(context_id: u32, root_context: CalloutRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const request = [pair(":method", "GET"), pair(":path", "/check"), pair(":authority", "auth")];
    const result = this.root_context.httpCall("auth", request, new ArrayBuffer(0), [], 1000, this,
      (origin: Context, headers: u32, body_size: usize, trailers: u32): void => {
        const status = stream_context.headers.http_callback.get(":status");
        info("callout: context " + origin.context_id.toString() + ": auth answered :status " + status
          + " with " + body_size.toString() + " body bytes");
        if (status == "200") {
          info("callout: allowed, resuming the request");
          continue_request();
        } else {
          info("callout: denied, sending 403");
          send_local_response(403, "", bytes("forbidden"), [pair("x-auth", "denied")], GrpcStatusValues.InvalidCode);
        }
      });
    if (result != WasmResultValues.Ok) {
      // An authorizer fails closed when it cannot ask.
      info("callout: dispatch to auth failed: " + result.toString());
      send_local_response(503, "", bytes("auth unavailable"), [pair("x-auth", "unavailable")], GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    info("callout: dispatched");
    return FilterHeadersStatusValues.StopIteration;
  }
}

// ---- tick

// Out-parameters of the raw shared-data calls: value pointer, value size, cas.
const out = new ArrayBuffer(12);

// Adds one to the decimal number in shared data `key` (absent counts as 0), retrying on a CAS
// mismatch. Returns the new value, or -1 after logging why not.
function incrementShared(key: string): i64 {
  const k = bytes(key);
  const o = changetype<usize>(out);
  while (true) {
    store<u32>(o, 0);
    store<u32>(o, 0, 4);
    store<u32>(o, 0, 8);
    const got = abi.proxy_get_shared_data(changetype<usize>(k), k.byteLength, o, o + 4, o + 8);
    let current: i64 = 0;
    if (got == WasmResultValues.Ok) {
      const ptr = load<u32>(o);
      if (ptr != 0) {
        // The host allocated the value through the runtime's `malloc`: an ArrayBuffer.
        const value = changetype<ArrayBuffer>(ptr);
        free(ptr);
        current = I64.parseInt(String.UTF8.decode(value));
      }
    } else if (got != WasmResultValues.NotFound) {
      info("tick: get_shared_data(" + key + ") failed: " + got.toString());
      return -1;
    }
    const cas = load<u32>(o, 8);
    const next = current + 1;
    const v = bytes(next.toString());
    const set = abi.proxy_set_shared_data(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength, cas);
    if (set == WasmResultValues.Ok) {
      return next;
    }
    if (set != WasmResultValues.CasMismatch) {
      info("tick: set_shared_data(" + key + ") failed: " + set.toString());
      return -1;
    }
    info("tick: CAS mismatch on " + key + ", retrying");
  }
  return -1;
}

class TickRoot extends RootContext {
  ticks_total: Counter | null = null;

  createContext(context_id: u32): Context {
    return new Context(context_id, this);
  }

  onConfigure(configuration_size: u32): bool {
    set_tick_period_milliseconds(100);
    this.ticks_total = new Counter("ticks_total");
    info("tick: tick period 100 ms, counter ticks_total defined");
    return true;
  }

  onTick(): void {
    const ticks = incrementShared("ticks");
    if (ticks >= 0) {
      info("tick: ticks=" + ticks.toString());
    }
    const counter = this.ticks_total;
    if (counter !== null) {
      counter.increment(1);
    }
  }
}

// ---- body

class BodyRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new BodyFilter(context_id, this);
  }
}

class BodyFilter extends Context {
  constructor(context_id: u32, root_context: BodyRoot) {
    super(context_id, root_context);
  }

  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    if (!end_of_stream) {
      info("body: buffering, " + body_buffer_length.toString() + " bytes so far");
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    const body = String.UTF8.decode(get_buffer_bytes(BufferTypeValues.HttpRequestBody, 0, <u32>body_buffer_length));
    const rewritten = bytes(body.replaceAll("foo", "bar"));
    const status = proxy_set_buffer_bytes(BufferTypeValues.HttpRequestBody, 0, <u32>body_buffer_length,
      changetype<usize>(rewritten), rewritten.byteLength);
    info("body: rewrote " + body_buffer_length.toString() + " bytes into " + rewritten.byteLength.toString()
      + " bytes: " + status.toString());
    return FilterDataStatusValues.Continue;
  }
}

registerRootContext((context_id: u32): RootContext => { return new HeadersRoot(context_id); }, "headers");
registerRootContext((context_id: u32): RootContext => { return new LocalRoot(context_id); }, "local");
registerRootContext((context_id: u32): RootContext => { return new CalloutRoot(context_id); }, "callout");
registerRootContext((context_id: u32): RootContext => { return new TickRoot(context_id); }, "tick");
registerRootContext((context_id: u32): RootContext => { return new BodyRoot(context_id); }, "body");
