// A C++ plugin against the raw Proxy-Wasm ABI (../c-abi/proxy_wasm_abi.h), using the standard
// library the way C++ plugins do (std::string, std::map, std::unique_ptr), built with Debian's
// clang++, libc++ and wasi-libc for wasm32-wasi as a reactor, exceptions off as in
// Emscripten-built plugins:
//
//   clang++ --target=wasm32-wasi -mexec-model=reactor -O2 -std=c++17 -fno-exceptions \
//     -I../c-abi -Wl,--export=malloc plugin.cc
//
// It exports `malloc` and, beside it, a `proxy_on_memory_allocate` that calls it (what
// Emscripten-built plugins export); the host uses `malloc`.
//
// The plugin configuration names the scenario (the same scenarios and log lines as the C
// plugin):
//
//   headers  reads `:path` and `x-a`; adds `x-added: 1`, replaces `x-a` with `changed`, removes
//            `x-remove`; adds `x-response: yes` to the response
//   body     buffers the request body to its end, replaces `foo` with `bar`
//   callout  asks upstream `auth` (GET /check); 200 resumes the request, anything else gets a
//            local 403 `forbidden` with `x-auth: denied`; the answer is matched to its stream by
//            the call's token
//
// An unknown configuration fails proxy_on_configure.

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proxy_wasm_abi.h"

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

void info(const std::string& message) { proxy_log(PW_LOG_INFO, message.data(), message.size()); }

// Takes ownership of bytes the host allocated with our malloc.
std::string take(char* data, size_t size) {
  std::string out(data == nullptr ? "" : data, size);
  std::free(data);
  return out;
}

// The ABI's header-map encoding: a count, a (name length, value length) table, then each name
// and value NUL-terminated.
std::string serialize(const Pairs& pairs) {
  std::string out;
  auto word = [&out](uint32_t n) { out.append(reinterpret_cast<const char*>(&n), 4); };
  word(static_cast<uint32_t>(pairs.size()));
  for (const auto& [name, value] : pairs) {
    word(static_cast<uint32_t>(name.size()));
    word(static_cast<uint32_t>(value.size()));
  }
  for (const auto& [name, value] : pairs) {
    out.append(name).push_back('\0');
    out.append(value).push_back('\0');
  }
  return out;
}

bool header(uint32_t map, const std::string& name, std::string* value) {
  char* data = nullptr;
  size_t size = 0;
  if (proxy_get_header_map_value(map, name.data(), name.size(), &data, &size) != PW_OK) return false;
  *value = take(data, size);
  return true;
}

void local_reply(uint32_t status, const Pairs& headers, const std::string& body) {
  std::string map = serialize(headers);
  proxy_send_local_response(status, "", 0, body.data(), body.size(), map.data(), map.size(), -1);
}

class Stream {
 public:
  explicit Stream(uint32_t id) : id_(id) {}
  virtual ~Stream() = default;
  virtual uint32_t onRequestHeaders() { return PW_CONTINUE; }
  virtual uint32_t onResponseHeaders() { return PW_CONTINUE; }
  virtual uint32_t onRequestBody(uint32_t, bool) { return PW_CONTINUE; }
  virtual void onCallResponse(uint32_t, uint32_t) {}

 protected:
  uint32_t id_;
};

// Pending callouts: token -> the stream that made it.
std::map<uint32_t, uint32_t> callouts;

class Headers : public Stream {
 public:
  using Stream::Stream;
  uint32_t onRequestHeaders() override {
    std::string path = "<none>", x_a = "<none>";
    header(PW_MAP_REQUEST_HEADERS, ":path", &path);
    header(PW_MAP_REQUEST_HEADERS, "x-a", &x_a);
    info("headers: :path=" + path + " x-a=" + x_a);
    const std::string added = "x-added", one = "1", a = "x-a", changed = "changed", remove = "x-remove";
    proxy_add_header_map_value(PW_MAP_REQUEST_HEADERS, added.data(), added.size(), one.data(), one.size());
    proxy_replace_header_map_value(PW_MAP_REQUEST_HEADERS, a.data(), a.size(), changed.data(), changed.size());
    proxy_remove_header_map_value(PW_MAP_REQUEST_HEADERS, remove.data(), remove.size());
    info("headers: added x-added, replaced x-a, removed x-remove");
    return PW_CONTINUE;
  }
  uint32_t onResponseHeaders() override {
    const std::string name = "x-response", value = "yes";
    proxy_add_header_map_value(PW_MAP_RESPONSE_HEADERS, name.data(), name.size(), value.data(), value.size());
    info("headers: added x-response");
    return PW_CONTINUE;
  }
};

class Body : public Stream {
 public:
  using Stream::Stream;
  uint32_t onRequestBody(uint32_t size, bool end_of_stream) override {
    if (!end_of_stream) {
      info("body: buffering, " + std::to_string(size) + " bytes so far");
      return PW_PAUSE;
    }
    char* data = nullptr;
    size_t got = 0;
    if (proxy_get_buffer_bytes(PW_BUFFER_REQUEST_BODY, 0, size, &data, &got) != PW_OK) return PW_CONTINUE;
    std::string body = take(data, got);
    std::string rewritten;
    for (size_t i = 0; i < body.size();) {
      if (body.compare(i, 3, "foo") == 0) {
        rewritten += "bar";
        i += 3;
      } else {
        rewritten += body[i++];
      }
    }
    proxy_set_buffer_bytes(PW_BUFFER_REQUEST_BODY, 0, size, rewritten.data(), rewritten.size());
    info("body: rewrote " + std::to_string(body.size()) + " bytes into " + std::to_string(rewritten.size()) + " bytes");
    return PW_CONTINUE;
  }
};

class Callout : public Stream {
 public:
  using Stream::Stream;
  uint32_t onRequestHeaders() override {
    std::string headers = serialize({{":method", "GET"}, {":path", "/check"}, {":authority", "auth"}});
    std::string trailers = serialize({});
    const std::string upstream = "auth";
    uint32_t token = 0;
    proxy_status_t status = proxy_http_call(upstream.data(), upstream.size(), headers.data(), headers.size(), "", 0,
                                            trailers.data(), trailers.size(), 1000, &token);
    if (status != PW_OK) {
      // An authorizer fails closed when it cannot ask.
      info("callout: dispatch to auth failed: " + std::to_string(status));
      local_reply(503, {{"x-auth", "unavailable"}}, "auth unavailable");
      return PW_PAUSE;
    }
    callouts[token] = id_;
    info("callout: dispatched token " + std::to_string(token));
    return PW_PAUSE;
  }
  void onCallResponse(uint32_t token, uint32_t body_size) override {
    std::string status;
    if (header(PW_MAP_HTTP_CALL_RESPONSE_HEADERS, ":status", &status)) {
      info("callout: context " + std::to_string(id_) + " token " + std::to_string(token) + ": auth answered :status " +
           status + " with " + std::to_string(body_size) + " body bytes");
    }
    if (status == "200") {
      info("callout: allowed, resuming the request");
      proxy_continue_stream(PW_STREAM_REQUEST);
    } else {
      info("callout: denied, sending 403");
      local_reply(403, {{"x-auth", "denied"}}, "forbidden");
    }
  }
};

// Root context id -> its scenario; stream context id -> its stream.
std::map<uint32_t, std::string> roots;
std::map<uint32_t, std::unique_ptr<Stream>> streams;

Stream* stream(uint32_t id) {
  auto it = streams.find(id);
  return it == streams.end() ? nullptr : it->second.get();
}

}  // namespace

extern "C" {

PW_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1() {}

// Emscripten-style allocator export; `malloc` itself is exported by the linker.
PW_EXPORT(proxy_on_memory_allocate) void* proxy_on_memory_allocate(size_t size) { return std::malloc(size); }

PW_EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t id, uint32_t parent) {
  if (parent == 0) {
    roots[id] = "";
    return;
  }
  const std::string& scenario = roots[parent];
  if (scenario == "headers") {
    streams[id] = std::make_unique<Headers>(id);
  } else if (scenario == "body") {
    streams[id] = std::make_unique<Body>(id);
  } else if (scenario == "callout") {
    streams[id] = std::make_unique<Callout>(id);
  }
}

PW_EXPORT(proxy_on_vm_start) uint32_t proxy_on_vm_start(uint32_t, size_t) { return 1; }

PW_EXPORT(proxy_on_configure) uint32_t proxy_on_configure(uint32_t id, size_t size) {
  char* data = nullptr;
  size_t got = 0;
  if (proxy_get_buffer_bytes(PW_BUFFER_PLUGIN_CONFIGURATION, 0, size, &data, &got) != PW_OK) return 0;
  std::string scenario = take(data, got);
  if (scenario != "headers" && scenario != "body" && scenario != "callout") {
    info("root " + std::to_string(id) + ": unknown scenario");
    return 0;
  }
  roots[id] = scenario;
  info("root " + std::to_string(id) + ": configured scenario " + scenario);
  return 1;
}

PW_EXPORT(proxy_on_request_headers) uint32_t proxy_on_request_headers(uint32_t id, uint32_t, uint32_t) {
  Stream* s = stream(id);
  return s == nullptr ? PW_CONTINUE : s->onRequestHeaders();
}

PW_EXPORT(proxy_on_response_headers) uint32_t proxy_on_response_headers(uint32_t id, uint32_t, uint32_t) {
  Stream* s = stream(id);
  return s == nullptr ? PW_CONTINUE : s->onResponseHeaders();
}

PW_EXPORT(proxy_on_request_body) uint32_t proxy_on_request_body(uint32_t id, uint32_t size, uint32_t end_of_stream) {
  Stream* s = stream(id);
  return s == nullptr ? PW_CONTINUE : s->onRequestBody(size, end_of_stream != 0);
}

PW_EXPORT(proxy_on_http_call_response)
void proxy_on_http_call_response(uint32_t, uint32_t token, uint32_t, uint32_t body_size, uint32_t) {
  auto it = callouts.find(token);
  if (it == callouts.end()) {
    info("callout: unknown token " + std::to_string(token));
    return;
  }
  uint32_t id = it->second;
  callouts.erase(it);
  Stream* s = stream(id);
  if (s == nullptr) return;
  proxy_set_effective_context(id);
  s->onCallResponse(token, body_size);
}

PW_EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t) { return 1; }

PW_EXPORT(proxy_on_log) void proxy_on_log(uint32_t) {}

PW_EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t id) { streams.erase(id); }

}  // extern "C"
