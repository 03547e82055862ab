//! What happened in an exchange, as one JSON object (`pwhost run --json`).

use proxy_wasm_host::{HeaderMap, MetricValue};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::foreign::ForeignArg;
use crate::scripted::Outcome;

/// Bytes without losing one: a string when they are UTF-8, else `{"base64": "..."}` (the form an
/// exchange file takes them in too).
pub fn bytes_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => json!({ "base64": BASE64.encode(bytes) }),
    }
}

/// A header map as a list of `[name, value]` pairs, in order.
fn pairs(map: &HeaderMap) -> Value {
    Value::Array(map.pairs().iter().map(|(k, v)| json!([bytes_json(k), bytes_json(v)])).collect())
}

/// The outcome as JSON. Every header name and value, body, data and message is [`bytes_json`]:
/// a string when it is UTF-8, else `{"base64": ...}`, so no byte is lost.
/// - `request`, `response`: the last stream's final `headers` and `trailers` (lists of pairs)
///   and `body`;
/// - `connection`: the last TCP connection's final `downstream` and `upstream` data;
/// - `local_reply`: `status`, `details`, `headers`, `body`, `grpc_status`, or null;
/// - `callouts`: each HTTP callout's `upstream`, `headers`, `body`, `trailers`, `timeout_ms`;
/// - `grpc_calls`: each gRPC call's `upstream`, `service`, `method`, `metadata`, `message`;
/// - `logs`: `level`, `message`, `plugin`; `metrics`: name to value (a histogram's samples as
///   a list);
/// - `stats`: every stat of the host ([`PluginHost::stats`](proxy_wasm_host::PluginHost::stats)),
///   each `name`, `labels` (an object) and `value`, in the order rendered;
/// - `security`: the policy's refusals: `host_calls_denied`, `callbacks_skipped`,
///   `callouts_refused`;
/// - `trap`: the engine's message, or null;
/// - `callbacks`: `callback`, `context_id`, `args`, and `result` (a number) or `trap`;
/// - `foreign`: each proxy-specific foreign function called: `function`, `context_id`,
///   `arguments` (field to value: strings and bytes as bytes are everywhere here, bools and
///   enum values by name);
/// - `actions`: each stream step's index (from 0) and the action the plugin answered;
/// - `error`: null; `pwhost run` sets it to a line saying why when the plugin was refused or
///   did not start (the other keys then hold what happened until then).
pub fn outcome_json(out: &Outcome) -> Value {
    let s = &out.stream;
    let metrics: Map<String, Value> = out
        .metrics
        .iter()
        .map(|(name, v)| {
            let v = match v {
                MetricValue::Counter(c) => json!(c),
                MetricValue::Gauge(g) => json!(g),
                MetricValue::Histogram(samples) => json!(samples),
            };
            (name.clone(), v)
        })
        .collect();
    json!({
        "request": {"headers": pairs(&s.request_headers), "body": bytes_json(&s.request_body), "trailers": pairs(&s.request_trailers)},
        "response": {"headers": pairs(&s.response_headers), "body": bytes_json(&s.response_body), "trailers": pairs(&s.response_trailers)},
        "connection": {"downstream": bytes_json(&s.downstream_data), "upstream": bytes_json(&s.upstream_data)},
        "local_reply": out.local_reply.as_ref().map(|r| json!({
            "status": r.status,
            "details": r.details,
            "headers": pairs(&r.headers),
            "body": bytes_json(&r.body),
            "grpc_status": r.grpc_status,
        })),
        "callouts": out.callouts.iter().map(|c| json!({
            "upstream": c.upstream,
            "headers": pairs(&c.headers),
            "body": bytes_json(&c.body),
            "trailers": pairs(&c.trailers),
            "timeout_ms": c.timeout_ms,
        })).collect::<Vec<_>>(),
        "grpc_calls": out.grpc_calls.iter().map(|c| json!({
            "upstream": c.upstream,
            "service": c.service,
            "method": c.method,
            "metadata": pairs(&c.metadata),
            "message": c.message.as_deref().map(bytes_json),
        })).collect::<Vec<_>>(),
        "logs": out.logs.iter().map(|l| json!({"level": l.level.name(), "message": l.message, "plugin": l.plugin})).collect::<Vec<_>>(),
        "metrics": metrics,
        "stats": out.stats.iter().map(|s| json!({
            "name": s.name,
            "labels": s.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<String, Value>>(),
            "value": s.value,
        })).collect::<Vec<_>>(),
        "security": {
            "host_calls_denied": out.security.host_calls_denied,
            "callbacks_skipped": out.security.callbacks_skipped,
            "callouts_refused": out.security.callouts_refused,
        },
        "trap": out.trap,
        "callbacks": out.callbacks.iter().map(|c| {
            let mut v = json!({"callback": c.callback.name(), "context_id": c.context_id, "args": c.args});
            match &c.result {
                Some(Ok(r)) => v["result"] = json!(r),
                Some(Err(t)) => v["trap"] = json!(t),
                None => {}
            }
            v
        }).collect::<Vec<_>>(),
        "foreign": out.foreign.iter().map(|f| {
            let arguments: Map<String, Value> = f.arguments.iter().map(|(k, v)| {
                let v = match v {
                    ForeignArg::Bytes(bytes) => bytes_json(bytes),
                    ForeignArg::Name(name) => json!(name),
                };
                (k.to_string(), v)
            }).collect();
            json!({"function": f.function, "context_id": f.context_id, "arguments": arguments})
        }).collect::<Vec<_>>(),
        "actions": out.actions.iter().map(|(i, a)| json!({"step": i, "action": a.name()})).collect::<Vec<_>>(),
        "error": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_never_lost() {
        assert_eq!(bytes_json(b"plain"), json!("plain"));
        assert_eq!(bytes_json(b""), json!(""));
        let binary = b"a\xc0\xa7\xffz";
        let v = bytes_json(binary);
        assert_eq!(v, json!({"base64": "YcCn/3o="}));
        assert_eq!(BASE64.decode(v["base64"].as_str().unwrap()).unwrap(), binary);
    }
}
