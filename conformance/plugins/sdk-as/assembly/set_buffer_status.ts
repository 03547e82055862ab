// A plugin that calls the setter @solo-io/proxy-runtime 0.1.8 declares for buffers,
// `proxy_set_buffer_status`. The runtime binds it to the import `env.proxy_get_buffer_status`
// with five parameters (a copy-paste slip in its imports.ts), while that host function takes
// three. The module therefore imports `env.proxy_get_buffer_status` with a type no host
// provides: the reference host fails to link it, and ours refuses it at load, naming the import
// and both types. Built by `cargo xtask build-plugins` as sdk_as_set_buffer_status.wasm.

export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterDataStatusValues } from "@solo-io/proxy-runtime";
import * as abi from "@solo-io/proxy-runtime/imports";

class ClearBody extends Context {
  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    const empty = new ArrayBuffer(0);
    abi.proxy_set_buffer_status(0, 0, <u32>body_buffer_length, changetype<usize>(empty), 0);
    return FilterDataStatusValues.Continue;
  }
}

class ClearBodyRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new ClearBody(context_id, this);
  }
}

registerRootContext((context_id: u32): RootContext => { return new ClearBodyRoot(context_id); }, "clear_body");
