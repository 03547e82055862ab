//! The exchange file: a plugin run against scripted steps, in YAML.
//!
//! ```yaml
//! plugin:                      # all optional
//!   name: authz                # plugin_name (default "plugin")
//!   root_id: ""                # plugin_root_id
//!   vm_id: ""                  # plugin_vm_id
//!   configuration: "..."       # handed to proxy_on_configure
//!   vm_configuration: "..."    # handed to proxy_on_vm_start
//!   failure_policy: FAIL_RELOAD  # when the VM fails: FAIL_CLOSED (default: 503, TCP closed),
//!                              # FAIL_OPEN (unfiltered) or FAIL_RELOAD (a new VM after a backoff)
//!   fail_open: false           # the older spelling of FAIL_OPEN; not with failure_policy
//!   reload_config:             # FAIL_RELOAD only; every key optional
//!     backoff: {base_interval: 1s, max_interval: 10s}   # 10x the base by default
//!     fail_open: false         # while waiting and when crash-looped: unfiltered, or 503 (default)
//!     crash_loop: {max_failures: 10, window: 60s}       # then no more reloads until reloaded
//!   vm_model: SHARED           # SHARED (a VM per worker and vm_id), PER_PLUGIN, EPHEMERAL (per stream)
//!   allow_on_headers_stop_iteration: false  # headers answering 1 stop only the headers
//!   environment: {KEY: value}  # what WASI environ_get shows
//! limits:                      # optional
//!   memory_bytes: 16777216     # linear memory at most
//!   call_deadline_ms: 100      # time per callback at most, or `none` (default 5000)
//! properties:                  # optional; segments joined by '.'; added to and overriding
//!   request.path: /a           #   Envoy's attributes (see `attributes`). A string is its
//!   source.port: 8080          #   UTF-8 bytes, an integer 8 bytes little-endian, a boolean 1 byte
//!                              # or a list: [{path: [filter_metadata, envoy.filters.http.lua, k], value: x}]
//! connection:                  # optional: what connection.*, source.*, destination.* answer
//!   source_address: 192.0.2.1:52000
//!   destination_address: 192.0.2.2:8080
//! upstreams: [auth]            # optional: callouts to others fail (default: any upstream)
//! others:                      # optional: more plugins of the same module, started before the steps
//!   - {name: consumer, vm_id: q, configuration: consumer}
//! steps:
//!   - request_headers: {":path": /a, x-a: "1"}   # or a list of [name, value] pairs
//!   - request_body: hello
//!     end_of_stream: true
//!   - http_call_response: {headers: {":status": "200"}, body: ok}
//!   - tick
//! ```
//!
//! `others` take the keys of `plugin`. One whose `vm_id` and `vm_configuration` differ from
//! every earlier plugin's gets a VM of its own; one with the same pair joins that VM, needs its
//! own `root_id`, and its worker VM holds the earlier plugins' root contexts too. The others
//! get ticks, queue notifications, callout answers and `shutdown`; streams go to the first
//! plugin.
//!
//! Steps: `request_headers`, `request_body`, `request_trailers`, `response_headers`,
//! `response_body`, `response_trailers`, `new_connection`, `downstream_data`, `upstream_data`,
//! `downstream_close`, `upstream_close` (a peer type: `LOCAL`, `REMOTE`, `UNKNOWN`; default
//! `REMOTE`), `finish`, `http_call_response` (`headers`, `body`, `trailers`; it answers the
//! oldest pending callout), `http_call_failure` (a reason: a reset), `http_call_timeout`
//! (Envoy's router answers 504), `grpc_initial_metadata`,
//! `grpc_message`, `grpc_trailing_metadata`, `grpc_close` (`status`, `message`; a message or a
//! close answers the oldest open gRPC call or stream, and ends a unary call; metadata goes to
//! the oldest open stream), `tick`, `foreign_function` (`function_id`, `arguments`),
//! `shutdown`, `advance` (a duration: the wall clock and the failure policy's clock move on)
//! and `reload_configuration` (the plugin's configuration is reloaded, with a new one when
//! given: `reload_configuration: new-config`). A step without input may be a bare name
//! (`- tick`).
//!
//! Durations are a number and a unit: `1500ms`, `1.5s`, `2m`.
//!
//! `end_of_stream` may follow headers, body and data steps. Left out, headers end the stream
//! unless a body or trailers of the same direction come later (before `finish`), and a body
//! chunk ends it unless another chunk or trailers follow.

use std::fmt;
use std::time::Duration;

use proxy_wasm_host::abi::PeerType;
use proxy_wasm_host::{FailurePolicy, Limits, PluginInfo, ReloadConfig, VmConfig, VmModel};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_norway::{Mapping, Value};

use crate::attributes::Connection;
use crate::policy;
use crate::scripted::{Exchange, Step};

/// What is wrong with an exchange file: one line naming the place and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeError(pub String);

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExchangeError {}

pub(crate) type Result<T> = std::result::Result<T, ExchangeError>;

pub(crate) fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(ExchangeError(message.into()))
}

/// The top-level keys of an exchange file.
pub const KEYS: &[&str] = &["plugin", "limits", "properties", "connection", "upstreams", "others", "steps"];

/// The keys a conformance case (`conformance/cases`) adds to an exchange: not an exchange's, so
/// an exchange file holding one is refused with a pointer to the conformance runner.
pub const CASE_KEYS: &[&str] = &["description", "guest", "requires"];

/// Parses an exchange file's text. A relative `plugin.code.signature.public_key_file` is read
/// from the current directory; [`parse_in`] reads it from the exchange's.
pub fn parse(text: &str) -> Result<Exchange> {
    parse_in(text, None)
}

/// Parses an exchange file's text, reading a relative `plugin.code.signature.public_key_file`
/// from `dir` (the exchange file's directory) when given.
pub fn parse_in(text: &str, dir: Option<&std::path::Path>) -> Result<Exchange> {
    let value: Value = serde_norway::from_str(text).map_err(|e| ExchangeError(format!("not valid YAML: {e}")))?;
    match value {
        Value::Mapping(m) => from_mapping_in(&m, dir),
        Value::Null => err("the exchange is empty: it needs at least `steps`"),
        _ => err("the exchange must be a mapping with `steps` (and optionally `plugin`, `limits`, `properties`, `others`)"),
    }
}

/// Builds an exchange from a parsed mapping that has only [`KEYS`].
pub fn from_mapping(m: &Mapping) -> Result<Exchange> {
    from_mapping_in(m, None)
}

/// [`from_mapping`], reading a relative public key file from `dir` when given.
pub fn from_mapping_in(m: &Mapping, dir: Option<&std::path::Path>) -> Result<Exchange> {
    for key in m.keys() {
        let key = key_str(key)?;
        if CASE_KEYS.contains(&key) {
            return err(format!(
                "`{key}` is a key of a conformance case (conformance/cases), not of an exchange: run the case with \
                 `cargo xtask conformance --case <its name>`, or drop `description`, `guest` and `requires` to run \
                 the rest as an exchange"
            ));
        }
        if !KEYS.contains(&key) {
            return err(format!("unknown key `{key}`; an exchange has {}", KEYS.join(", ")));
        }
    }
    let mut exchange = Exchange::default();
    if let Some(p) = m.get("plugin") {
        let (plugin, vm, code) = plugin_section(p, "plugin", dir)?;
        exchange.plugin = plugin;
        exchange.vm = vm;
        exchange.code = code;
    } else {
        exchange.plugin.name = "plugin".into();
    }
    if let Some(l) = m.get("limits") {
        exchange.vm.limits = limits(l)?;
    }
    if let Some(p) = m.get("properties") {
        exchange.properties = properties(p)?;
    }
    if let Some(c) = m.get("connection") {
        exchange.connection = connection(c)?;
    }
    if let Some(u) = m.get("upstreams") {
        let Value::Sequence(names) = u else { return err("`upstreams` must be a list of names") };
        exchange.upstreams = Some(names.iter().map(|n| text(n, "`upstreams`")).collect::<Result<_>>()?);
    }
    if let Some(o) = m.get("others") {
        let Value::Sequence(others) = o else { return err("`others` must be a list of plugin sections") };
        for (i, other) in others.iter().enumerate() {
            let (plugin, mut vm, code) = plugin_section(other, &format!("others[{i}]"), dir)?;
            if code.is_some() {
                return err(format!("`others[{i}].code`: the others run the first plugin's module; `code` goes in `plugin`"));
            }
            vm.limits = exchange.vm.limits;
            exchange.others.push((plugin, vm));
        }
    }
    match m.get("steps") {
        Some(Value::Sequence(steps)) => exchange.steps = parse_steps(steps)?,
        Some(Value::Null) | None => {}
        Some(_) => return err("`steps` must be a list"),
    }
    Ok(exchange)
}

pub(crate) fn key_str(key: &Value) -> Result<&str> {
    key.as_str().ok_or_else(|| ExchangeError(format!("keys must be strings, found {}", show(key))))
}

/// A short rendering of a YAML value for messages.
pub(crate) fn show(value: &Value) -> String {
    serde_norway::to_string(value).map_or_else(|_| "?".into(), |s| s.trim().replace('\n', " "))
}

/// A scalar as text: strings as they are, numbers and booleans as YAML writes them.
pub(crate) fn text(value: &Value, what: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => err(format!("{what} must be a string, found {}", show(other))),
    }
}

/// Bytes: a string is its UTF-8 bytes (numbers and booleans as YAML writes them); any bytes at
/// all are written `{base64: "..."}` (standard alphabet, padded) or `{hex: "..."}`.
pub(crate) fn bytes(value: &Value, what: &str) -> Result<Vec<u8>> {
    let Value::Mapping(m) = value else { return Ok(text(value, what)?.into_bytes()) };
    let mut entries = m.iter();
    let (Some((key, encoded)), None) = (entries.next(), entries.next()) else {
        return err(format!("{what}: bytes are a string, {{base64: ...}} or {{hex: ...}}, found {}", show(value)));
    };
    let encoded = text(encoded, what)?;
    match key_str(key)? {
        "base64" => BASE64
            .decode(encoded.as_bytes())
            .map_err(|e| ExchangeError(format!("{what}: `{encoded}` is not valid base64: {e}"))),
        "hex" => hex::decode(encoded.split_whitespace().collect::<String>())
            .map_err(|e| ExchangeError(format!("{what}: `{encoded}` is not valid hex: {e}"))),
        other => err(format!("{what}: bytes are a string, {{base64: ...}} or {{hex: ...}}, found `{other}`")),
    }
}

fn boolean(value: &Value, what: &str) -> Result<bool> {
    value.as_bool().ok_or_else(|| ExchangeError(format!("{what} must be true or false, found {}", show(value))))
}

fn unsigned(value: &Value, what: &str) -> Result<u64> {
    value.as_u64().ok_or_else(|| ExchangeError(format!("{what} must be a non-negative integer, found {}", show(value))))
}

/// The keys of a plugin section.
const PLUGIN_KEYS: &[&str] =
    &["name", "root_id", "vm_id", "configuration", "vm_configuration", "failure_policy", "fail_open", "reload_config", "vm_model", "allow_on_headers_stop_iteration", "environment"];

fn plugin_section(
    value: &Value,
    what: &str,
    dir: Option<&std::path::Path>,
) -> Result<(PluginInfo, VmConfig, Option<code_source::CodeSpec>)> {
    let Value::Mapping(m) = value else { return err(format!("`{what}` must be a mapping")) };
    let mut plugin = PluginInfo { name: "plugin".into(), ..Default::default() };
    let mut vm = VmConfig::default();
    let mut code = None;
    for (key, v) in m {
        let key = key_str(key)?;
        let at = format!("`{what}.{key}`");
        match key {
            "name" => plugin.name = text(v, &at)?,
            "root_id" => plugin.root_id = text(v, &at)?,
            "vm_id" => plugin.vm_id = text(v, &at)?,
            "configuration" => plugin.configuration = bytes(v, &at)?,
            "vm_configuration" => vm.configuration = bytes(v, &at)?,
            "fail_open" => plugin.fail_open = boolean(v, &at)?,
            "allow_on_headers_stop_iteration" => plugin.allow_on_headers_stop_iteration = boolean(v, &at)?,
            "failure_policy" => {
                let name = text(v, &at)?;
                plugin.failure_policy = Some(FailurePolicy::from_name(&name).ok_or_else(|| {
                    ExchangeError(format!("{at}: `{name}` is not a failure policy (FAIL_CLOSED, FAIL_OPEN, FAIL_RELOAD)"))
                })?);
            }
            "reload_config" => plugin.reload_config = reload_config(v, &format!("{what}.{key}"))?,
            "vm_model" => {
                let name = text(v, &at)?;
                plugin.vm_model = VmModel::from_name(&name).ok_or_else(|| {
                    ExchangeError(format!("{at}: `{name}` is not a VM model (SHARED, PER_PLUGIN, EPHEMERAL)"))
                })?;
            }
            "environment" => {
                let Value::Mapping(env) = v else { return err(format!("{at} must be a mapping")) };
                for (k, val) in env {
                    vm.environment.push((text(k, &at)?, text(val, &at)?));
                }
            }
            "capability_restriction_config" => vm.capabilities = policy::capabilities(v, &at)?,
            "sanitize" => plugin.policy = policy::sanitize(v, &at, std::mem::take(&mut plugin.policy))?,
            "allowed_upstreams" => {
                plugin.policy = policy::allowed_upstreams(v, &at, std::mem::take(&mut plugin.policy))?
            }
            "code" => code = Some(policy::code(v, &at, dir)?),
            other => {
                let keys: Vec<&str> = PLUGIN_KEYS.iter().chain(policy::KEYS).copied().collect();
                return err(format!("unknown key `{other}` in `{what}`; it has {}", keys.join(", ")));
            }
        }
    }
    if plugin.fail_open && plugin.failure_policy.is_some() {
        return err(format!("`{what}.fail_open` is the older spelling of `failure_policy: FAIL_OPEN`: set one of them, not both"));
    }
    vm.vm_id = plugin.vm_id.clone();
    Ok((plugin, vm, code))
}

/// Checks that a mapping has only `allowed` keys; `what` names it in messages.
fn only_keys<'a>(value: &'a Value, what: &str, allowed: &[&str]) -> Result<&'a Mapping> {
    let Value::Mapping(m) = value else { return err(format!("`{what}` must be a mapping with {}", allowed.join(", "))) };
    for key in m.keys() {
        let key = key_str(key)?;
        if !allowed.contains(&key) {
            return err(format!("unknown key `{key}` in `{what}`; it has {}", allowed.join(", ")));
        }
    }
    Ok(m)
}

/// `reload_config`: `backoff` (`base_interval`, `max_interval`), `fail_open`, `crash_loop`
/// (`max_failures`, `window`). Values are checked here, each error naming its key.
fn reload_config(value: &Value, what: &str) -> Result<ReloadConfig> {
    let m = only_keys(value, what, &["backoff", "fail_open", "crash_loop"])?;
    let mut config = ReloadConfig::default();
    if let Some(b) = m.get("backoff") {
        let at = format!("{what}.backoff");
        let b = only_keys(b, &at, &["base_interval", "max_interval"])?;
        if let Some(v) = b.get("base_interval") {
            config.backoff.base_interval = duration(v, &format!("{at}.base_interval"))?;
        }
        if let Some(v) = b.get("max_interval") {
            config.backoff.max_interval = Some(duration(v, &format!("{at}.max_interval"))?);
        }
    }
    if let Some(v) = m.get("fail_open") {
        config.fail_open = boolean(v, &format!("`{what}.fail_open`"))?;
    }
    if let Some(c) = m.get("crash_loop") {
        let at = format!("{what}.crash_loop");
        let c = only_keys(c, &at, &["max_failures", "window"])?;
        if let Some(v) = c.get("max_failures") {
            let n = unsigned(v, &format!("`{at}.max_failures`"))?;
            config.crash_loop.max_failures =
                u32::try_from(n).map_err(|_| ExchangeError(format!("`{at}.max_failures` is too large: {n}")))?;
        }
        if let Some(v) = c.get("window") {
            config.crash_loop.window = duration(v, &format!("{at}.window"))?;
        }
    }
    // The host's own checks, with the key as this file spells it.
    config.validate("").map_err(|e| match e {
        proxy_wasm_host::Error::BadConfig { key, message, .. } => {
            let key = key.strip_prefix("reload_config.").unwrap_or(&key).to_string();
            ExchangeError(format!("`{what}.{key}` {message}"))
        }
        other => ExchangeError(other.to_string()),
    })?;
    Ok(config)
}

/// A duration: a number and a unit, `ms`, `s` or `m` (`1500ms`, `1.5s`, `2m`).
fn duration(value: &Value, what: &str) -> Result<Duration> {
    let text = text(value, &format!("`{what}`"))?;
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(0) => return err(format!("`{what}`: `{text}` is not a duration like 1500ms, 1.5s, 2m")),
        Some(i) => text.split_at(i),
        None => return err(format!("`{what}` needs a unit (ms, s or m), found `{text}`")),
    };
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return err(format!("`{what}`: `{unit}` is not a unit (ms, s or m) in `{text}`")),
    };
    let n: f64 = number.parse().map_err(|_| ExchangeError(format!("`{what}`: `{text}` is not a duration like 1500ms, 1.5s, 2m")))?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| ExchangeError(format!("`{what}`: `{text}` is out of range")))
}

fn limits(value: &Value) -> Result<Limits> {
    let Value::Mapping(m) = value else { return err("`limits` must be a mapping") };
    let mut limits = Limits::default();
    for (key, v) in m {
        match key_str(key)? {
            "memory_bytes" => limits.max_memory_bytes = unsigned(v, "`limits.memory_bytes`")?,
            "call_deadline_ms" => limits.call_deadline = call_deadline(v, "`limits.call_deadline_ms`")?,
            other => return err(format!("unknown key `{other}` in `limits`; it has memory_bytes, call_deadline_ms")),
        }
    }
    Ok(limits)
}

/// A CPU deadline in milliseconds, or `none` for no deadline.
fn call_deadline(value: &Value, what: &str) -> Result<Option<Duration>> {
    match value {
        Value::String(s) if s == "none" => Ok(None),
        v => match unsigned(v, what) {
            Ok(ms) => Ok(Some(Duration::from_millis(ms))),
            Err(_) => err(format!("{what} must be milliseconds or `none`, found {}", show(v))),
        },
    }
}

/// Properties, as the host stores them (segments joined by 0 bytes): a mapping of dotted paths
/// to values (`request.path: /a`), or a list of `{path, value}` where `path` is dotted or a list
/// of segments, for segments that contain dots (`[filter_metadata, envoy.filters.http.lua, k]`).
fn properties(value: &Value) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    match value {
        Value::Mapping(m) => m
            .iter()
            .map(|(key, v)| {
                let path = key_str(key)?;
                Ok((path.replace('.', "\0").into_bytes(), property_value(v, path)?))
            })
            .collect(),
        Value::Sequence(entries) => entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let at = format!("`properties[{i}]`");
                let Value::Mapping(e) = entry else { return err(format!("{at} must be {{path, value}}")) };
                for key in e.keys() {
                    let key = key_str(key)?;
                    if key != "path" && key != "value" {
                        return err(format!("unknown key `{key}` in {at}; it has path, value"));
                    }
                }
                let segments: Vec<String> = match e.get("path") {
                    Some(Value::Sequence(s)) if !s.is_empty() => s.iter().map(|v| text(v, &at)).collect::<Result<_>>()?,
                    Some(Value::String(dotted)) => dotted.split('.').map(str::to_string).collect(),
                    _ => return err(format!("{at}: `path` must be a dotted path or a list of segments")),
                };
                let shown = segments.join(".");
                let value = e.get("value").ok_or_else(|| ExchangeError(format!("{at}: `value` is missing")))?;
                Ok((segments.join("\0").into_bytes(), property_value(value, &shown)?))
            })
            .collect(),
        _ => err("`properties` must be a mapping of path to value, or a list of {path, value}"),
    }
}

/// A property's value: a string is its UTF-8 bytes, an integer 8 bytes little-endian, a boolean
/// one byte, and any bytes `{base64: ...}` or `{hex: ...}`.
fn property_value(v: &Value, path: &str) -> Result<Vec<u8>> {
    Ok(match v {
        Value::String(s) => s.clone().into_bytes(),
        Value::Bool(b) => vec![u8::from(*b)],
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_le_bytes().to_vec(),
            (None, Some(u)) => u.to_le_bytes().to_vec(),
            _ => return err(format!("property `{path}`: {n} is not an integer")),
        },
        Value::Mapping(_) => bytes(v, &format!("property `{path}`"))?,
        other => return err(format!("property `{path}` must be a string, integer, boolean or bytes, found {}", show(other))),
    })
}

/// The connection streams run on: `source_address`, `destination_address` (`ip:port`), `mtls`,
/// `requested_server_name`, `tls_version`, `protocol`; the rest as [`Connection::default`].
fn connection(value: &Value) -> Result<Connection> {
    let Value::Mapping(m) = value else { return err("`connection` must be a mapping") };
    let mut c = Connection::default();
    for (key, v) in m {
        let key = key_str(key)?;
        let at = format!("`connection.{key}`");
        match key {
            "source_address" => c.source_address = address(v, &at)?,
            "destination_address" => c.destination_address = address(v, &at)?,
            "mtls" => c.mtls = boolean(v, &at)?,
            "requested_server_name" => c.requested_server_name = text(v, &at)?,
            "tls_version" => c.tls_version = text(v, &at)?,
            "protocol" => c.protocol = text(v, &at)?,
            other => {
                return err(format!(
                    "unknown key `{other}` in `connection`; it has source_address, destination_address, mtls, requested_server_name, tls_version, protocol"
                ))
            }
        }
    }
    Ok(c)
}

/// An `ip:port` address.
fn address(value: &Value, what: &str) -> Result<String> {
    let text = text(value, what)?;
    match text.rsplit_once(':').map(|(ip, port)| (ip, port.parse::<u16>())) {
        Some((ip, Ok(_))) if !ip.is_empty() => Ok(text),
        _ => err(format!("{what} must be `ip:port`, found `{text}`")),
    }
}

/// Headers as a mapping (`{name: value}`) or a list of `[name, value]` pairs; names and values
/// are [`bytes`].
fn headers(value: &Value, what: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(m) => m.iter().map(|(k, v)| Ok((bytes(k, what)?, bytes(v, what)?))).collect(),
        Value::Sequence(pairs) => pairs
            .iter()
            .map(|pair| match pair {
                Value::Sequence(kv) if kv.len() == 2 => Ok((bytes(&kv[0], what)?, bytes(&kv[1], what)?)),
                other => err(format!("{what}: each pair must be [name, value], found {}", show(other))),
            })
            .collect(),
        other => err(format!("{what} must be a mapping or a list of [name, value] pairs, found {}", show(other))),
    }
}

/// A step as written: its name, its input, and an explicit `end_of_stream`.
struct RawStep<'a> {
    name: &'a str,
    input: &'a Value,
    end_of_stream: Option<bool>,
}

const STEP_NAMES: &[&str] = &[
    "request_headers",
    "request_body",
    "request_trailers",
    "response_headers",
    "response_body",
    "response_trailers",
    "new_connection",
    "downstream_data",
    "upstream_data",
    "downstream_close",
    "upstream_close",
    "finish",
    "http_call_response",
    "http_call_failure",
    "http_call_timeout",
    "grpc_initial_metadata",
    "grpc_message",
    "grpc_trailing_metadata",
    "grpc_close",
    "tick",
    "foreign_function",
    "shutdown",
    "advance",
    "reload_configuration",
];

static NULL: Value = Value::Null;

fn raw_step(value: &Value) -> Result<RawStep<'_>> {
    match value {
        Value::String(name) => Ok(RawStep { name, input: &NULL, end_of_stream: None }),
        Value::Mapping(m) => {
            let mut step = None;
            let mut end_of_stream = None;
            for (key, v) in m {
                match key_str(key)? {
                    "end_of_stream" => end_of_stream = Some(boolean(v, "`end_of_stream`")?),
                    name if step.is_none() => step = Some((name, v)),
                    name => {
                        return err(format!(
                            "a step has one name (and maybe end_of_stream), found `{}` and `{name}`",
                            step.map_or("", |(n, _)| n)
                        ))
                    }
                }
            }
            let Some((name, input)) = step else { return err("a step needs a name, for example `tick`") };
            Ok(RawStep { name, input, end_of_stream })
        }
        other => err(format!("a step is a name or a mapping, found {}", show(other))),
    }
}

fn parse_steps(values: &[Value]) -> Result<Vec<Step>> {
    let raw: Vec<RawStep<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| raw_step(v).map_err(|e| ExchangeError(format!("step {}: {e}", i + 1))))
        .collect::<Result<_>>()?;
    raw.iter()
        .enumerate()
        .map(|(i, step)| {
            to_step(step, &raw[i + 1..]).map_err(|e| ExchangeError(format!("step {} (`{}`): {e}", i + 1, step.name)))
        })
        .collect()
}

/// Whether data of the same direction as `direction` follows in `later` before the stream
/// ends: what a left-out `end_of_stream` is inferred from.
fn more_follows(later: &[RawStep<'_>], following: &[&str]) -> bool {
    later.iter().take_while(|s| s.name != "finish" && s.name != "shutdown").any(|s| following.contains(&s.name))
}

fn to_step(step: &RawStep<'_>, later: &[RawStep<'_>]) -> Result<Step> {
    let input = step.input;
    let what = "the input";
    let eos = |following: &[&str]| step.end_of_stream.unwrap_or_else(|| !more_follows(later, following));
    let takes_eos = matches!(
        step.name,
        "request_headers" | "request_body" | "response_headers" | "response_body" | "downstream_data" | "upstream_data"
    );
    if step.end_of_stream.is_some() && !takes_eos {
        return err("only headers, body and data steps take `end_of_stream`");
    }
    let peer = |default: PeerType| -> Result<PeerType> {
        match input {
            Value::Null => Ok(default),
            v => {
                let name = text(v, what)?;
                PeerType::from_name(&name)
                    .ok_or_else(|| ExchangeError(format!("`{name}` is not a peer type (LOCAL, REMOTE, UNKNOWN)")))
            }
        }
    };
    let body = || bytes(input, what);
    let field = |m: &Mapping, key: &str| m.get(key).cloned().unwrap_or(Value::Null);
    let fields = |allowed: &[&str]| -> Result<Mapping> {
        match input {
            Value::Null => Ok(Mapping::new()),
            Value::Mapping(m) => {
                for key in m.keys() {
                    let key = key_str(key)?;
                    if !allowed.contains(&key) {
                        return err(format!("unknown key `{key}`; it has {}", allowed.join(", ")));
                    }
                }
                Ok(m.clone())
            }
            other => err(format!("expected a mapping with {}, found {}", allowed.join(", "), show(other))),
        }
    };
    Ok(match step.name {
        "request_headers" => Step::RequestHeaders {
            headers: headers(input, what)?,
            end_of_stream: eos(&["request_body", "request_trailers"]),
        },
        "request_body" => Step::RequestBody { body: body()?, end_of_stream: eos(&["request_body", "request_trailers"]) },
        "request_trailers" => Step::RequestTrailers(headers(input, what)?),
        "response_headers" => Step::ResponseHeaders {
            headers: headers(input, what)?,
            end_of_stream: eos(&["response_body", "response_trailers"]),
        },
        "response_body" => {
            Step::ResponseBody { body: body()?, end_of_stream: eos(&["response_body", "response_trailers"]) }
        }
        "response_trailers" => Step::ResponseTrailers(headers(input, what)?),
        "new_connection" => Step::NewConnection,
        "downstream_data" => Step::DownstreamData { data: body()?, end_of_stream: step.end_of_stream.unwrap_or(false) },
        "upstream_data" => Step::UpstreamData { data: body()?, end_of_stream: step.end_of_stream.unwrap_or(false) },
        "downstream_close" => Step::DownstreamClose(peer(PeerType::Remote)?),
        "upstream_close" => Step::UpstreamClose(peer(PeerType::Remote)?),
        "finish" => Step::Finish,
        "http_call_response" => {
            let m = fields(&["headers", "body", "trailers"])?;
            Step::HttpCallResponse {
                headers: headers(&field(&m, "headers"), "`headers`")?,
                body: bytes(&field(&m, "body"), "`body`")?,
                trailers: headers(&field(&m, "trailers"), "`trailers`")?,
            }
        }
        "http_call_failure" => Step::HttpCallFailure(match input {
            Value::Null => "reset".into(),
            v => text(v, what)?,
        }),
        "http_call_timeout" => Step::HttpCallTimeout,
        "grpc_initial_metadata" => Step::GrpcInitialMetadata(headers(input, what)?),
        "grpc_message" => Step::GrpcMessage(body()?),
        "grpc_trailing_metadata" => Step::GrpcTrailingMetadata(headers(input, what)?),
        "grpc_close" => {
            let m = fields(&["status", "message"])?;
            let status = match field(&m, "status") {
                Value::Null => 0,
                v => u32::try_from(unsigned(&v, "`status`")?).map_err(|_| ExchangeError("`status` is too large".into()))?,
            };
            Step::GrpcClose { status, message: text(&field(&m, "message"), "`message`")? }
        }
        "tick" => Step::Tick,
        "foreign_function" => {
            let m = fields(&["function_id", "arguments"])?;
            let function_id = match field(&m, "function_id") {
                Value::Null => 0,
                v => u32::try_from(unsigned(&v, "`function_id`")?)
                    .map_err(|_| ExchangeError("`function_id` is too large".into()))?,
            };
            Step::ForeignFunction { function_id, arguments: bytes(&field(&m, "arguments"), "`arguments`")? }
        }
        "shutdown" => Step::Shutdown,
        "advance" => Step::Advance(duration(input, "advance")?),
        "reload_configuration" => Step::ReloadConfiguration(match input {
            Value::Null => None,
            v => Some(bytes(v, what)?),
        }),
        other => return err(format!("unknown step `{other}`; the steps are {}", STEP_NAMES.join(", "))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        p.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn bytes_that_are_not_utf8_are_written_in_base64_or_hex() {
        let e = parse(
            r#"
plugin: {configuration: {hex: "00 ff 7f"}, vm_configuration: {base64: "AP8="}}
steps:
  - request_headers: [[x-bin, {hex: "61c0a7ff7a"}], [{base64: "eC1r"}, plain]]
  - request_body: {base64: "3q2+7w=="}
  - request_trailers: {t: {hex: ""}}
  - http_call_response: {body: {hex: "ff"}}
  - foreign_function: {arguments: {base64: ""}}
"#,
        )
        .unwrap();
        assert_eq!(e.plugin.configuration, [0x00, 0xff, 0x7f]);
        assert_eq!(e.vm.configuration, [0x00, 0xff]);
        assert_eq!(
            e.steps[0],
            Step::RequestHeaders {
                headers: vec![(b"x-bin".to_vec(), b"a\xc0\xa7\xffz".to_vec()), (b"x-k".to_vec(), b"plain".to_vec())],
                end_of_stream: false
            }
        );
        assert_eq!(e.steps[1], Step::RequestBody { body: vec![0xde, 0xad, 0xbe, 0xef], end_of_stream: false });
        assert_eq!(e.steps[2], Step::RequestTrailers(vec![(b"t".to_vec(), Vec::new())]));
        assert!(matches!(&e.steps[3], Step::HttpCallResponse { body, .. } if body == &[0xff]));
        assert!(matches!(&e.steps[4], Step::ForeignFunction { arguments, .. } if arguments.is_empty()));
    }

    #[test]
    fn properties_take_segments_with_dots_and_the_connection_its_addresses() {
        let e = parse(
            r#"
properties:
  - {path: [filter_metadata, envoy.filters.http.lua, key], value: x}
  - {path: request.path, value: /a}
  - {path: [bin], value: {hex: "00ff"}}
connection: {source_address: "10.0.0.1:1234", mtls: true, tls_version: TLSv1.3, protocol: HTTP/2}
steps: []
"#,
        )
        .unwrap();
        assert_eq!(
            e.properties,
            vec![
                (b"filter_metadata\0envoy.filters.http.lua\0key".to_vec(), b"x".to_vec()),
                (b"request\0path".to_vec(), b"/a".to_vec()),
                (b"bin".to_vec(), vec![0, 0xff]),
            ]
        );
        assert_eq!(e.connection.source_address, "10.0.0.1:1234");
        assert_eq!(e.connection.destination_address, Connection::default().destination_address);
        assert!(e.connection.mtls);
        assert_eq!((e.connection.tls_version.as_str(), e.connection.protocol.as_str()), ("TLSv1.3", "HTTP/2"));
        for (yaml, expected) in [
            ("properties: [{path: a}]", "`properties[0]`: `value` is missing"),
            ("properties: [{path: [], value: 1}]", "`path` must be a dotted path or a list of segments"),
            ("properties: [{path: a, value: 1, extra: 2}]", "unknown key `extra` in `properties[0]`"),
            ("properties: [1]", "`properties[0]` must be {path, value}"),
            ("connection: {source_address: nowhere}", "`connection.source_address` must be `ip:port`, found `nowhere`"),
            ("connection: {sauce: x}", "unknown key `sauce` in `connection`"),
        ] {
            let error = parse(&format!("{yaml}\nsteps: []")).unwrap_err().to_string();
            assert!(error.contains(expected), "{yaml}: {error}");
        }
    }

    #[test]
    fn bad_byte_forms_are_refused_naming_the_place() {
        for (yaml, expected) in [
            ("steps: [{request_body: {base64: '!!'}}]", "step 1 (`request_body`): the input: `!!` is not valid base64"),
            ("steps: [{request_body: {hex: 'abc'}}]", "`abc` is not valid hex"),
            ("steps: [{request_body: {utf16: 'a'}}]", "bytes are a string, {base64: ...} or {hex: ...}, found `utf16`"),
            ("steps: [{request_body: {hex: 'aa', base64: 'qg=='}}]", "bytes are a string, {base64: ...} or {hex: ...}"),
            ("plugin: {configuration: {hex: zz}}\nsteps: []", "`plugin.configuration`: `zz` is not valid hex"),
        ] {
            let error = parse(yaml).unwrap_err().to_string();
            assert!(error.contains(expected), "{yaml}: {error}");
        }
    }

    #[test]
    fn a_full_exchange_parses() {
        let e = parse(
            r#"
plugin: {name: authz, root_id: r, vm_id: v, configuration: cfg, vm_configuration: vmc, fail_open: true, environment: {A: "1"}}
limits: {memory_bytes: 65536, call_deadline_ms: 50}
properties: {request.path: /a, source.port: 8080, connection.mtls: true}
upstreams: [auth, "7"]
others: [{name: consumer, vm_id: q}]
steps:
  - request_headers: {":path": /a, x-n: 7}
  - request_body: hello
  - request_body: world
  - request_trailers: [[t, "1"]]
  - response_headers: {":status": "200"}
  - http_call_response: {headers: {":status": "200"}, body: ok}
  - http_call_failure
  - grpc_close: {status: 14, message: unavailable}
  - foreign_function: {function_id: 3, arguments: xyz}
  - downstream_close: LOCAL
  - tick
  - finish
  - shutdown
"#,
        )
        .unwrap();
        assert_eq!(e.plugin.name, "authz");
        assert_eq!(e.plugin.root_id, "r");
        assert!(e.plugin.fail_open);
        assert_eq!(e.vm.vm_id, "v");
        assert_eq!(e.vm.configuration, b"vmc");
        assert_eq!(e.vm.environment, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(e.vm.limits.max_memory_bytes, 65536);
        assert_eq!(e.vm.limits.call_deadline, Some(Duration::from_millis(50)));
        assert_eq!(e.upstreams, Some(vec!["auth".to_string(), "7".to_string()]));
        assert_eq!(e.others[0].0.name, "consumer");
        assert_eq!(e.others[0].1.vm_id, "q");
        assert_eq!(
            e.properties,
            vec![
                (b"request\0path".to_vec(), b"/a".to_vec()),
                (b"source\0port".to_vec(), 8080u64.to_le_bytes().to_vec()),
                (b"connection\0mtls".to_vec(), vec![1]),
            ]
        );
        assert_eq!(
            e.steps,
            vec![
                Step::RequestHeaders { headers: pairs(&[(":path", "/a"), ("x-n", "7")]), end_of_stream: false },
                Step::RequestBody { body: b"hello".to_vec(), end_of_stream: false },
                Step::RequestBody { body: b"world".to_vec(), end_of_stream: false },
                Step::RequestTrailers(pairs(&[("t", "1")])),
                Step::ResponseHeaders { headers: pairs(&[(":status", "200")]), end_of_stream: true },
                Step::HttpCallResponse { headers: pairs(&[(":status", "200")]), body: b"ok".to_vec(), trailers: vec![] },
                Step::HttpCallFailure("reset".into()),
                Step::GrpcClose { status: 14, message: "unavailable".into() },
                Step::ForeignFunction { function_id: 3, arguments: b"xyz".to_vec() },
                Step::DownstreamClose(PeerType::Local),
                Step::Tick,
                Step::Finish,
                Step::Shutdown,
            ]
        );
    }

    #[test]
    fn the_failure_policy_and_vm_model_parse() {
        let e = parse(
            r#"
plugin:
  failure_policy: FAIL_RELOAD
  reload_config: {backoff: {base_interval: 250ms, max_interval: 1.5s}, fail_open: true, crash_loop: {max_failures: 3, window: 2m}}
  vm_model: EPHEMERAL
steps: [{advance: 1500ms}, reload_configuration, {reload_configuration: new}]
"#,
        )
        .unwrap();
        assert_eq!(e.plugin.failure_policy, Some(FailurePolicy::FailReload));
        let r = e.plugin.reload_config;
        assert_eq!(r.backoff.base_interval, Duration::from_millis(250));
        assert_eq!(r.backoff.max_interval, Some(Duration::from_millis(1500)));
        assert!(r.fail_open);
        assert_eq!((r.crash_loop.max_failures, r.crash_loop.window), (3, Duration::from_secs(120)));
        assert_eq!(e.plugin.vm_model, VmModel::Ephemeral);
        assert_eq!(
            e.steps,
            vec![
                Step::Advance(Duration::from_millis(1500)),
                Step::ReloadConfiguration(None),
                Step::ReloadConfiguration(Some(b"new".to_vec())),
            ]
        );
        let d = parse("plugin: {fail_open: true}").unwrap();
        assert_eq!((d.plugin.failure_policy, d.plugin.failure_policy_in_force()), (None, FailurePolicy::FailOpen));
        assert_eq!(parse("steps: []").unwrap().plugin.failure_policy_in_force(), FailurePolicy::FailClosed);
    }

    #[test]
    fn end_of_stream_is_inferred_per_stream_and_can_be_given() {
        let e = parse("steps: [{request_headers: {}}, finish, {request_body: x}, {request_headers: {}, end_of_stream: false}]")
            .unwrap();
        assert!(matches!(e.steps[0], Step::RequestHeaders { end_of_stream: true, .. }), "finish ends the stream");
        assert!(matches!(e.steps[2], Step::RequestBody { end_of_stream: true, .. }));
        assert!(matches!(e.steps[3], Step::RequestHeaders { end_of_stream: false, .. }));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("steps: [{request_hedaers: {}}]", "step 1 (`request_hedaers`): unknown step `request_hedaers`; the steps are request_headers"),
            ("stpes: []", "unknown key `stpes`"),
            ("description: d\nguest: conformance\nsteps: []", "`description` is a key of a conformance case"),
            ("steps: []\nguest: sdk", "run the case with `cargo xtask conformance --case <its name>`"),
            ("steps: [tick: {}, 3]", "step 2: a step is a name or a mapping, found 3"),
            ("steps: [{tick: null, end_of_stream: true}]", "only headers, body and data steps take `end_of_stream`"),
            ("steps: [{request_headers: [[a]]}]", "each pair must be [name, value]"),
            ("plugin: {nmae: x}", "unknown key `nmae` in `plugin`"),
            ("limits: {memory_bytes: -1}", "`limits.memory_bytes` must be a non-negative integer, found -1"),
            ("steps: [{downstream_close: SIDEWAYS}]", "`SIDEWAYS` is not a peer type"),
            ("steps: [{grpc_close: {status: 1, why: x}}]", "unknown key `why`; it has status, message"),
            ("steps: [{tick: x, finish: y}]", "a step has one name"),
            ("[1, 2]", "the exchange must be a mapping"),
            ("{", "not valid YAML"),
            ("", "the exchange is empty"),
            ("plugin: {failure_policy: FAIL_SOMETIMES}", "`plugin.failure_policy`: `FAIL_SOMETIMES` is not a failure policy"),
            ("plugin: {failure_policy: FAIL_OPEN, fail_open: true}", "`plugin.fail_open` is the older spelling"),
            ("plugin: {vm_model: PER_STREAM}", "`plugin.vm_model`: `PER_STREAM` is not a VM model"),
            ("plugin: {reload_config: {backof: {}}}", "unknown key `backof` in `plugin.reload_config`"),
            ("plugin: {reload_config: {backoff: {base_interval: 5}}}", "`plugin.reload_config.backoff.base_interval` needs a unit"),
            ("plugin: {reload_config: {backoff: {base_interval: 5h}}}", "`h` is not a unit"),
            ("plugin: {reload_config: {backoff: {base_interval: 0s}}}", "`plugin.reload_config.backoff.base_interval` must be at least 1ms"),
            (
                "plugin: {reload_config: {backoff: {base_interval: 2s, max_interval: 1s}}}",
                "`plugin.reload_config.backoff.max_interval` (1s) must not be shorter than base_interval (2s)",
            ),
            ("plugin: {reload_config: {crash_loop: {max_failures: 0}}}", "`plugin.reload_config.crash_loop.max_failures` must be at least 1"),
            ("others: [{reload_config: {crash_loop: {window: 0ms}}}]", "`others[0].reload_config.crash_loop.window` must be at least 1ms"),
            ("steps: [{advance: soon}]", "step 1 (`advance`): `advance`: `soon` is not a duration like 1500ms, 1.5s, 2m"),
            ("steps: [{advance: 5}]", "step 1 (`advance`): `advance` needs a unit (ms, s or m), found `5`"),
        ];
        for (text, expected) in cases {
            let e = parse(text).err().unwrap_or_else(|| panic!("{text} parsed"));
            assert!(e.to_string().contains(expected), "{text}: `{e}` lacks `{expected}`");
        }
    }
}
