/*
 * The Proxy-Wasm ABI 0.2.1 as C declarations: the host functions the C and C++ plugins of
 * conformance/plugins import, and the enums they use. Written for this project from the ABI
 * table in abi/src/table.rs (names, argument order, widths); not a copy of any SDK's header.
 *
 * Sizes and pointers are 32-bit on wasm32. Every host function returns a proxy_status_t.
 */
#ifndef PROXY_WASM_ABI_H
#define PROXY_WASM_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An import from module `env`, and an export under the ABI's name. */
#define PW_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define PW_EXPORT(name) __attribute__((export_name(#name)))

typedef uint32_t proxy_status_t;
enum {
  PW_OK = 0,
  PW_NOT_FOUND = 1,
  PW_BAD_ARGUMENT = 2,
  PW_CAS_MISMATCH = 8,
  PW_INTERNAL_FAILURE = 10,
};

enum { PW_LOG_TRACE = 0, PW_LOG_DEBUG = 1, PW_LOG_INFO = 2, PW_LOG_WARN = 3, PW_LOG_ERROR = 4 };

enum {
  PW_MAP_REQUEST_HEADERS = 0,
  PW_MAP_RESPONSE_HEADERS = 2,
  PW_MAP_HTTP_CALL_RESPONSE_HEADERS = 6,
};

enum {
  PW_BUFFER_REQUEST_BODY = 0,
  PW_BUFFER_HTTP_CALL_RESPONSE_BODY = 4,
  PW_BUFFER_PLUGIN_CONFIGURATION = 7,
};

enum { PW_STREAM_REQUEST = 0, PW_STREAM_RESPONSE = 1 };

/* What a stream callback answers: CONTINUE, or PAUSE (stop iteration). */
enum { PW_CONTINUE = 0, PW_PAUSE = 1 };

PW_IMPORT(proxy_log)
proxy_status_t proxy_log(uint32_t level, const char *message, size_t size);

PW_IMPORT(proxy_get_buffer_bytes)
proxy_status_t proxy_get_buffer_bytes(uint32_t buffer, size_t start, size_t max_size, char **ret_ptr, size_t *ret_size);
PW_IMPORT(proxy_set_buffer_bytes)
proxy_status_t proxy_set_buffer_bytes(uint32_t buffer, size_t start, size_t size, const char *value, size_t value_size);

PW_IMPORT(proxy_get_header_map_value)
proxy_status_t proxy_get_header_map_value(uint32_t map, const char *key, size_t key_size, char **ret_ptr, size_t *ret_size);
PW_IMPORT(proxy_add_header_map_value)
proxy_status_t proxy_add_header_map_value(uint32_t map, const char *key, size_t key_size, const char *value, size_t value_size);
PW_IMPORT(proxy_replace_header_map_value)
proxy_status_t proxy_replace_header_map_value(uint32_t map, const char *key, size_t key_size, const char *value, size_t value_size);
PW_IMPORT(proxy_remove_header_map_value)
proxy_status_t proxy_remove_header_map_value(uint32_t map, const char *key, size_t key_size);

PW_IMPORT(proxy_continue_stream)
proxy_status_t proxy_continue_stream(uint32_t stream);
PW_IMPORT(proxy_send_local_response)
proxy_status_t proxy_send_local_response(uint32_t status_code, const char *details, size_t details_size, const char *body,
                                         size_t body_size, const char *headers, size_t headers_size, int32_t grpc_status);

PW_IMPORT(proxy_http_call)
proxy_status_t proxy_http_call(const char *upstream, size_t upstream_size, const char *headers, size_t headers_size,
                               const char *body, size_t body_size, const char *trailers, size_t trailers_size,
                               uint32_t timeout_ms, uint32_t *ret_call_id);

PW_IMPORT(proxy_set_effective_context)
proxy_status_t proxy_set_effective_context(uint32_t context_id);

#ifdef __cplusplus
}
#endif

#endif /* PROXY_WASM_ABI_H */
