/*
 * A C plugin against the raw Proxy-Wasm ABI (../c-abi/proxy_wasm_abi.h), built the way C
 * plugins are: Debian's clang and wasi-libc for wasm32-wasi as a reactor (exports
 * `_initialize`), exporting wasi-libc's `malloc` (-Wl,--export=malloc) and, as Emscripten-built
 * plugins do, a `proxy_on_memory_allocate` of its own beside it. The reference host looks for
 * `malloc` first; ours does too, so `proxy_on_memory_allocate`, which logs each call, is never
 * called (a transcript showing its log line would mean the host picked the other allocator).
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -I../c-abi -Wl,--export=malloc plugin.c
 *
 * The plugin configuration names the scenario:
 *
 *   headers  reads `:path` and `x-a`; adds `x-added: 1`, replaces `x-a` with `changed`, removes
 *            `x-remove`; adds `x-response: yes` to the response
 *   body     buffers the request body to its end, replaces `foo` with `bar`
 *   callout  asks upstream `auth` (GET /check); 200 resumes the request, anything else gets a
 *            local 403 `forbidden` with `x-auth: denied`; the answer is matched to its stream by
 *            the call's token, so it works whichever context id the host passes
 *
 * An unknown configuration fails proxy_on_configure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_wasm_abi.h"

enum scenario { NONE, HEADERS, BODY, CALLOUT };

#define MAX_CONTEXTS 64

/* Root contexts and their scenarios; stream contexts and their roots; pending callouts. */
static struct { uint32_t id; enum scenario scenario; } roots[MAX_CONTEXTS];
static struct { uint32_t id; uint32_t root; } streams[MAX_CONTEXTS];
static struct { uint32_t token; uint32_t stream; } callouts[MAX_CONTEXTS];

static void logf_info(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void logf_info(const char *format, ...) {
  char line[256];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (n < 0) return;
  proxy_log(PW_LOG_INFO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

PW_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}

/* Emscripten-style allocator export; `malloc` itself is exported by the linker. */
PW_EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) {
  logf_info("proxy_on_memory_allocate(%zu): the host chose this allocator over malloc", size);
  return malloc(size);
}

static enum scenario scenario_of(uint32_t context_id) {
  uint32_t root = context_id;
  for (int i = 0; i < MAX_CONTEXTS; i++) {
    if (streams[i].id == context_id) root = streams[i].root;
  }
  for (int i = 0; i < MAX_CONTEXTS; i++) {
    if (roots[i].id == root) return roots[i].scenario;
  }
  return NONE;
}

PW_EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t context_id, uint32_t parent) {
  for (int i = 0; i < MAX_CONTEXTS; i++) {
    if (parent == 0 && roots[i].id == 0) {
      roots[i].id = context_id;
      roots[i].scenario = NONE;
      return;
    }
    if (parent != 0 && streams[i].id == 0) {
      streams[i].id = context_id;
      streams[i].root = parent;
      return;
    }
  }
}

PW_EXPORT(proxy_on_vm_start) uint32_t proxy_on_vm_start(uint32_t root_id, size_t vm_configuration_size) {
  return 1;
}

PW_EXPORT(proxy_on_configure) uint32_t proxy_on_configure(uint32_t root_id, size_t size) {
  char *config = NULL;
  size_t config_size = 0;
  if (proxy_get_buffer_bytes(PW_BUFFER_PLUGIN_CONFIGURATION, 0, size, &config, &config_size) != PW_OK) return 0;
  enum scenario scenario = NONE;
  if (config_size == 7 && memcmp(config, "headers", 7) == 0) scenario = HEADERS;
  if (config_size == 4 && memcmp(config, "body", 4) == 0) scenario = BODY;
  if (config_size == 7 && memcmp(config, "callout", 7) == 0) scenario = CALLOUT;
  free(config);
  if (scenario == NONE) {
    logf_info("root %u: unknown scenario", root_id);
    return 0;
  }
  for (int i = 0; i < MAX_CONTEXTS; i++) {
    if (roots[i].id == root_id) roots[i].scenario = scenario;
  }
  logf_info("root %u: configured scenario %s", root_id,
            scenario == HEADERS ? "headers" : scenario == BODY ? "body" : "callout");
  return 1;
}

/* A request header as a NUL-terminated string the caller frees, or NULL when absent. */
static char *request_header(const char *name) {
  char *value = NULL;
  size_t size = 0;
  if (proxy_get_header_map_value(PW_MAP_REQUEST_HEADERS, name, strlen(name), &value, &size) != PW_OK) return NULL;
  char *text = malloc(size + 1);
  if (text == NULL) return NULL;
  if (size > 0) memcpy(text, value, size);
  text[size] = 0;
  free(value);
  return text;
}

/* Serializes `count` (name, value) pairs in the ABI's header-map encoding into `out` (at most
 * `capacity` bytes); returns its size, or 0 when it does not fit. */
static size_t serialize_pairs(const char *const *pairs, uint32_t count, char *out, size_t capacity) {
  size_t size = 4 + 8 * (size_t)count;
  for (uint32_t i = 0; i < 2 * count; i++) size += strlen(pairs[i]) + 1;
  if (size > capacity) return 0;
  memcpy(out, &count, 4);
  char *data = out + 4 + 8 * count;
  for (uint32_t i = 0; i < 2 * count; i++) {
    uint32_t len = (uint32_t)strlen(pairs[i]);
    memcpy(out + 4 + 4 * i, &len, 4);
    memcpy(data, pairs[i], len + 1);
    data += len + 1;
  }
  return size;
}

static void local_reply(uint32_t status, const char *header, const char *value, const char *body) {
  const char *pairs[] = {header, value};
  char map[128];
  size_t map_size = serialize_pairs(pairs, 1, map, sizeof map);
  proxy_send_local_response(status, "", 0, body, strlen(body), map, map_size, -1);
}

PW_EXPORT(proxy_on_request_headers)
uint32_t proxy_on_request_headers(uint32_t context_id, uint32_t headers, uint32_t end_of_stream) {
  switch (scenario_of(context_id)) {
  case HEADERS: {
    char *path = request_header(":path");
    char *x_a = request_header("x-a");
    logf_info("headers: :path=%s x-a=%s", path ? path : "<none>", x_a ? x_a : "<none>");
    free(path);
    free(x_a);
    proxy_add_header_map_value(PW_MAP_REQUEST_HEADERS, "x-added", 7, "1", 1);
    proxy_replace_header_map_value(PW_MAP_REQUEST_HEADERS, "x-a", 3, "changed", 7);
    proxy_remove_header_map_value(PW_MAP_REQUEST_HEADERS, "x-remove", 8);
    logf_info("headers: added x-added, replaced x-a, removed x-remove");
    return PW_CONTINUE;
  }
  case CALLOUT: {
    const char *pairs[] = {":method", "GET", ":path", "/check", ":authority", "auth"};
    char map[128];
    size_t map_size = serialize_pairs(pairs, 3, map, sizeof map);
    uint32_t token = 0;
    proxy_status_t status = proxy_http_call("auth", 4, map, map_size, "", 0, "\0\0\0\0", 4, 1000, &token);
    if (status != PW_OK) {
      /* An authorizer fails closed when it cannot ask. */
      logf_info("callout: dispatch to auth failed: %u", status);
      local_reply(503, "x-auth", "unavailable", "auth unavailable");
      return PW_PAUSE;
    }
    for (int i = 0; i < MAX_CONTEXTS; i++) {
      if (callouts[i].token == 0) {
        callouts[i].token = token;
        callouts[i].stream = context_id;
        break;
      }
    }
    logf_info("callout: dispatched token %u", token);
    return PW_PAUSE;
  }
  default:
    return PW_CONTINUE;
  }
}

PW_EXPORT(proxy_on_response_headers)
uint32_t proxy_on_response_headers(uint32_t context_id, uint32_t headers, uint32_t end_of_stream) {
  if (scenario_of(context_id) == HEADERS) {
    proxy_add_header_map_value(PW_MAP_RESPONSE_HEADERS, "x-response", 10, "yes", 3);
    logf_info("headers: added x-response");
  }
  return PW_CONTINUE;
}

PW_EXPORT(proxy_on_request_body)
uint32_t proxy_on_request_body(uint32_t context_id, uint32_t body_size, uint32_t end_of_stream) {
  if (scenario_of(context_id) != BODY) return PW_CONTINUE;
  if (!end_of_stream) {
    logf_info("body: buffering, %u bytes so far", body_size);
    return PW_PAUSE;
  }
  char *body = NULL;
  size_t size = 0;
  if (proxy_get_buffer_bytes(PW_BUFFER_REQUEST_BODY, 0, body_size, &body, &size) != PW_OK) return PW_CONTINUE;
  /* foo and bar have the same length: rewrite in place. */
  for (size_t i = 0; i + 3 <= size; i++) {
    if (memcmp(body + i, "foo", 3) == 0) {
      memcpy(body + i, "bar", 3);
      i += 2;
    }
  }
  proxy_set_buffer_bytes(PW_BUFFER_REQUEST_BODY, 0, body_size, body, size);
  logf_info("body: rewrote %zu bytes into %zu bytes", size, size);
  free(body);
  return PW_CONTINUE;
}

PW_EXPORT(proxy_on_http_call_response)
void proxy_on_http_call_response(uint32_t context_id, uint32_t token, uint32_t headers, uint32_t body_size,
                                 uint32_t trailers) {
  uint32_t stream = 0;
  for (int i = 0; i < MAX_CONTEXTS; i++) {
    if (callouts[i].token == token && callouts[i].stream != 0) {
      stream = callouts[i].stream;
      callouts[i].token = 0;
      callouts[i].stream = 0;
    }
  }
  if (stream == 0) {
    logf_info("callout: unknown token %u", token);
    return;
  }
  proxy_set_effective_context(stream);
  char *status = NULL;
  size_t size = 0;
  int allowed = 0;
  if (proxy_get_header_map_value(PW_MAP_HTTP_CALL_RESPONSE_HEADERS, ":status", 7, &status, &size) == PW_OK) {
    allowed = size == 3 && memcmp(status, "200", 3) == 0;
    logf_info("callout: context %u token %u: auth answered :status %.*s with %u body bytes", stream, token,
              (int)size, status, body_size);
    free(status);
  }
  if (allowed) {
    logf_info("callout: allowed, resuming the request");
    proxy_continue_stream(PW_STREAM_REQUEST);
  } else {
    logf_info("callout: denied, sending 403");
    local_reply(403, "x-auth", "denied", "forbidden");
  }
}

PW_EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t context_id) { return 1; }

PW_EXPORT(proxy_on_log) void proxy_on_log(uint32_t context_id) {}

PW_EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t context_id) {
  for (int i = 0; i < MAX_CONTEXTS; i++) {
    if (streams[i].id == context_id) {
      streams[i].id = 0;
      streams[i].root = 0;
    }
  }
}
