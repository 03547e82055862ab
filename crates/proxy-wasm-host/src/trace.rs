//! [`Trace`]: an ordered record of what happened between the host and its guests, rendered as
//! a transcript.
//!
//! A trace records every callback the host makes (arguments and result), every host function a
//! guest calls (arguments decoded from guest memory, the returned status and the values handed
//! back), every call of the guest allocator from inside a host function (as `alloc(size=N)`:
//! which export, `malloc` or `proxy_on_memory_allocate`, is not shown, since the SDK exports
//! `malloc` on wasm32 and `proxy_on_memory_allocate` natively; the result only says whether it
//! gave an address), and lines an embedder
//! adds ([`Trace::note`]: steps, effects). It never records pointer values or timings, so that
//! the same exchange gives the same transcript on every engine, wasm32 or native.
//!
//! Tracing is off unless a [`PluginHost`](crate::PluginHost) is given a trace; when off, the
//! cost is one branch per callback and per host call. A trace is meant for one thread driving
//! its VMs, as a test runner does: calls made concurrently from several threads interleave.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use abi::{BufferType, Callback, ClockId, HostFunction, HostModule, Kind, LogLevel, MapLimits, MapType, MetricType};
use abi::{PeerType, Status, StreamType};

use crate::services::lock;
use crate::{GuestMemory, HostCx, Trap, TrapKind};

/// How transcripts name the guest allocator, whichever export it is.
pub const ALLOC: &str = "alloc";

/// Bytes shown of one value; longer values are cut and their length given.
const SHOWN_BYTES: usize = 160;

/// Pairs shown of one header map; longer maps are cut and their size given.
const SHOWN_PAIRS: usize = 8;

/// A shared, ordered record of calls between host and guests. Cloning is cheap and every clone
/// writes to the same record.
#[derive(Clone, Default)]
pub struct Trace {
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    events: Vec<Event>,
    /// A label per VM, by index.
    vms: Vec<String>,
    /// How many callbacks and host calls are open now.
    depth: usize,
    /// Where lines go as they happen, when the trace streams ([`Trace::stream_to`]).
    live: Option<Live>,
}

/// A streaming trace's renderer and the sink of its lines.
struct Live {
    renderer: Renderer,
    sink: Box<dyn FnMut(&str) + Send>,
}

struct Event {
    depth: usize,
    vm: Option<u32>,
    kind: EventKind,
}

enum EventKind {
    Callback(CallbackRecord),
    HostCall { call: String, result: Option<String> },
    Note(String),
}

/// One callback the host made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackRecord {
    /// The callback.
    pub callback: Callback,
    /// The context it was called on (0 for start functions and the allocator).
    pub context_id: u32,
    /// Its arguments after the context id.
    pub args: Vec<u64>,
    /// Its result (0 when it has none), or the trap message; `None` while it runs.
    pub result: Option<Result<u64, String>>,
}

/// Where a VM writes in a [`Trace`]: the trace and the VM's index in it.
#[derive(Clone)]
pub(crate) struct TraceHandle {
    trace: Trace,
    vm: u32,
}

/// Whether a callback's first parameter is the context id.
fn takes_context(callback: Callback) -> bool {
    callback.info().params.first().is_some_and(|p| p.kind == Kind::Ctx)
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Trace::default()
    }

    /// Adds a line of the embedder's (a step, an effect) at the current depth.
    pub fn note(&self, line: impl Into<String>) {
        let mut log = lock(&self.log);
        let depth = log.depth;
        log.events.push(Event { depth, vm: None, kind: EventKind::Note(line.into()) });
        log.stream_last();
    }

    /// Every callback recorded so far, in call order.
    pub fn callbacks(&self) -> Vec<CallbackRecord> {
        lock(&self.log)
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Callback(record) => Some(record.clone()),
                _ => None,
            })
            .collect()
    }

    /// Forgets every event (VM labels stay).
    pub fn clear(&self) {
        lock(&self.log).events.clear();
    }

    /// The transcript: one line per event, nested calls indented by two spaces. A call with
    /// nothing nested reads `name(args) -> result`; otherwise what it did follows, then its
    /// result on a line of its own starting with `=>`. A line `[vm N: label]` precedes the
    /// callbacks of another VM than the one before, when the trace has several VMs.
    pub fn render(&self) -> String {
        let log = lock(&self.log);
        let mut out = String::new();
        let mut sink = |line: &str| {
            out.push_str(line);
            out.push('\n');
        };
        let mut renderer = Renderer::new(log.vms.len() > 1);
        // Replays the events: a call ends before the next event at its depth or above.
        let mut open: Vec<usize> = Vec::new();
        for (i, event) in log.events.iter().enumerate() {
            while let Some(o) = open.pop_if(|o| log.events[*o].depth >= event.depth) {
                renderer.end(&mut sink, result_text(&log.events[o].kind));
            }
            renderer.event(&mut sink, &log.vms, event);
            if !matches!(event.kind, EventKind::Note(_)) {
                open.push(i);
            }
        }
        while let Some(o) = open.pop() {
            renderer.end(&mut sink, result_text(&log.events[o].kind));
        }
        out
    }

    /// Streams the transcript: from now on each line goes to `sink` as soon as it is known (a
    /// call's line once its first nested event starts or it returns), in the order and form of
    /// [`render`](Self::render), VM labels always shown. For tools that must show what happened
    /// before the process could die (a native plugin that aborts). [`finish_stream`](Self::finish_stream) ends it.
    pub fn stream_to(&self, sink: impl FnMut(&str) + Send + 'static) {
        lock(&self.log).live = Some(Live { renderer: Renderer::new(true), sink: Box::new(sink) });
    }

    /// Ends streaming: calls still open are closed as unfinished, and the sink is dropped.
    pub fn finish_stream(&self) {
        if let Some(mut live) = lock(&self.log).live.take() {
            live.renderer.finish(&mut *live.sink);
        }
    }

    pub(crate) fn register_vm(&self, label: String) -> TraceHandle {
        let mut log = lock(&self.log);
        log.vms.push(label);
        TraceHandle { trace: self.clone(), vm: (log.vms.len() - 1) as u32 }
    }
}

/// The result a finished (or never finished) call shows: a callback's per [`callback_result`],
/// a host call's status, or `(did not return)`; `None` for a note or a callback without one.
fn result_text(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::Note(_) => None,
        EventKind::HostCall { result, .. } => Some(result.clone().unwrap_or_else(|| "(did not return)".into())),
        EventKind::Callback(record) => callback_result(record),
    }
}

/// Turns events into transcript lines as soon as each line is known: the one renderer of both
/// [`Trace::render`] (replaying the record) and a streaming trace (live).
struct Renderer {
    /// Whether `[vm N: label]` lines are shown.
    labels: bool,
    current_vm: Option<u32>,
    /// Calls begun and not ended, innermost last.
    open: Vec<Open>,
}

struct Open {
    indent: String,
    line: String,
    /// Whether its line is out (something nested began).
    shown: bool,
}

impl Renderer {
    fn new(labels: bool) -> Self {
        Renderer { labels, current_vm: None, open: Vec::new() }
    }

    /// An event begins (a note is whole at once).
    fn event(&mut self, sink: &mut dyn FnMut(&str), vms: &[String], event: &Event) {
        self.show_parent(sink);
        if let (0, Some(vm)) = (event.depth, event.vm) {
            if self.current_vm != Some(vm) && self.labels {
                let label = vms.get(vm as usize).map_or("", String::as_str);
                sink(&format!("[vm {}: {label}]", vm + 1));
            }
            self.current_vm = Some(vm);
        }
        let indent = "  ".repeat(event.depth);
        match &event.kind {
            EventKind::Note(line) => sink(&format!("{indent}{line}")),
            EventKind::HostCall { call, .. } => self.open.push(Open { indent, line: call.clone(), shown: false }),
            EventKind::Callback(record) => {
                self.open.push(Open { indent, line: render_callback(record), shown: false })
            }
        }
    }

    /// The innermost open call ends with `result`.
    fn end(&mut self, sink: &mut dyn FnMut(&str), result: Option<String>) {
        let Some(call) = self.open.pop() else { return };
        match (call.shown, result) {
            (true, Some(result)) => sink(&format!("{}  => {result}", call.indent)),
            (true, None) => {}
            (false, Some(result)) => sink(&format!("{}{} -> {result}", call.indent, call.line)),
            (false, None) => sink(&format!("{}{}", call.indent, call.line)),
        }
    }

    /// Shows the line of the innermost open call, if not yet shown: something nests in it.
    fn show_parent(&mut self, sink: &mut dyn FnMut(&str)) {
        if let Some(parent) = self.open.last_mut().filter(|p| !p.shown) {
            parent.shown = true;
            sink(&format!("{}{}", parent.indent, parent.line));
        }
    }

    /// Closes every open call as unfinished.
    fn finish(&mut self, sink: &mut dyn FnMut(&str)) {
        while !self.open.is_empty() {
            self.end(sink, Some("(did not return)".into()));
        }
    }
}

impl Log {
    /// Streams the event just recorded, when the trace streams.
    fn stream_last(&mut self) {
        let Log { events, vms, live, .. } = self;
        if let (Some(live), Some(event)) = (live.as_mut(), events.last()) {
            live.renderer.event(&mut *live.sink, vms, event);
        }
    }

    /// Streams the end of the call recorded as `index`, when the trace streams.
    fn stream_end(&mut self, index: usize) {
        let Log { events, live, .. } = self;
        if let (Some(live), Some(event)) = (live.as_mut(), events.get(index)) {
            live.renderer.end(&mut *live.sink, result_text(&event.kind));
        }
    }
}

impl TraceHandle {
    fn push(&self, kind: EventKind) -> usize {
        let mut log = lock(&self.trace.log);
        let depth = log.depth;
        log.depth += 1;
        log.events.push(Event { depth, vm: Some(self.vm), kind });
        log.stream_last();
        log.events.len() - 1
    }

    /// Records the start of a callback; [`end_callback`](Self::end_callback) records its end.
    pub(crate) fn begin_callback(&self, callback: Callback, context_id: u32, args: &[u64]) -> usize {
        let args = args.iter().skip(usize::from(takes_context(callback))).copied().collect();
        let record = CallbackRecord { callback, context_id, args, result: None };
        self.push(EventKind::Callback(record))
    }

    /// Records the end of the callback begun as `index`.
    pub(crate) fn end_callback(&self, index: usize, result: &Result<u64, Trap>) {
        let mut log = lock(&self.trace.log);
        log.depth = log.depth.saturating_sub(1);
        if let Some(Event { kind: EventKind::Callback(record), .. }) = log.events.get_mut(index) {
            record.result = Some(result.as_ref().map(|v| *v).map_err(trap_text));
        }
        log.stream_end(index);
    }

    /// Records the start of a host call, with its arguments decoded from guest memory.
    pub(crate) fn begin_host_call(&self, mem: &GuestMemory<'_>, row: &HostFunction, args: &[u64]) -> usize {
        let call = render_host_call(mem, row, args);
        self.push(EventKind::HostCall { call, result: None })
    }

    /// Records the end of the host call begun as `index`: its status and, on success, the
    /// values it handed back.
    pub(crate) fn end_host_call(&self, mem: &GuestMemory<'_>, index: usize, row: &HostFunction, args: &[u64], result: &Result<i32, Trap>) {
        let text = match result {
            Ok(code) => {
                let status = match row.result {
                    Kind::Errno => abi::Errno::from_raw(*code as u32).map_or(code.to_string(), |e| e.name().to_string()),
                    _ => Status::from_raw(*code as u32).map_or(code.to_string(), |s| s.name().to_string()),
                };
                let outputs = if *code == 0 && row.module == HostModule::Env { render_outputs(mem, row, args) } else { String::new() };
                format!("{status}{outputs}")
            }
            Err(trap) => format!("trap: {}", trap_text(trap)),
        };
        let mut log = lock(&self.trace.log);
        log.depth = log.depth.saturating_sub(1);
        if let Some(Event { kind: EventKind::HostCall { result, .. }, .. }) = log.events.get_mut(index) {
            *result = Some(text);
        }
        log.stream_end(index);
    }
}

/// A trap as a transcript shows it: its kind (`guest`, `deadline`, `memory limit`,
/// `proc_exit(N)`), never the engine's message, which differs between engines. The host's
/// transcripts and the harness's both use it.
pub fn trap_text(trap: &Trap) -> String {
    match &trap.kind {
        TrapKind::Guest => "guest".to_string(),
        TrapKind::Deadline => "deadline".to_string(),
        TrapKind::MemoryLimit => "memory limit".to_string(),
        TrapKind::Exit(code) => format!("proc_exit({code})"),
    }
}

fn render_callback(record: &CallbackRecord) -> String {
    if matches!(record.callback, Callback::Malloc | Callback::OnMemoryAllocate) {
        let size = record.args.first().copied().unwrap_or(0);
        return format!("{ALLOC}(size={size})");
    }
    let info = record.callback.info();
    let mut params = info.params.iter();
    let mut parts = Vec::new();
    if takes_context(record.callback) {
        params.next();
        parts.push(format!("context_id={}", record.context_id));
    }
    for (param, value) in params.zip(&record.args) {
        let shown = match (param.kind, param.name) {
            (Kind::Bool, _) => bool_text(*value),
            (_, "peer_type") => enum_text(*value, |v| PeerType::from_raw(v).map(PeerType::name)),
            _ => value.to_string(),
        };
        parts.push(format!("{}={shown}", param.name));
    }
    format!("{}({})", info.name, parts.join(", "))
}

/// The result of a finished callback as shown, or `None` for one without a result.
fn callback_result(record: &CallbackRecord) -> Option<String> {
    let result = record.result.as_ref()?;
    let info = record.callback.info();
    match result {
        Err(trap) => Some(format!("trap: {trap}")),
        Ok(v) => match info.result {
            Kind::None | Kind::Never => None,
            Kind::Bool => Some(bool_text(*v)),
            Kind::Action => Some(enum_text(*v, |a| abi::Action::from_raw(a).map(abi::Action::name))),
            // An address differs between engines: say only whether it is one.
            Kind::Ptr => Some(if *v == 0 { "0".into() } else { "ok".into() }),
            _ => Some((*v as u32 as i32).to_string()),
        },
    }
}

fn bool_text(v: u64) -> String {
    match v {
        0 => "false".into(),
        1 => "true".into(),
        other => format!("true ({other})"),
    }
}

fn enum_text(v: u64, name: impl Fn(u32) -> Option<&'static str>) -> String {
    u32::try_from(v).ok().and_then(name).map_or_else(|| v.to_string(), str::to_string)
}

/// How an input parameter pair or single parameter is shown.
enum Shape {
    Bytes,
    Map,
    Iovecs,
    /// Only its length (an output buffer, or input not worth showing).
    Length,
}

/// How the `X_ptr` / `X_size` (or `X_len`) pair named `base` of `row` is shown.
fn pair_shape(row: &HostFunction, base: &str) -> Shape {
    match (row.module, row.name, base) {
        (HostModule::Env, _, "headers" | "trailers" | "metadata" | "map") => Shape::Map,
        (HostModule::Env, _, _) => Shape::Bytes,
        (HostModule::Wasi, "fd_write", "iovs") => Shape::Iovecs,
        (HostModule::Wasi, "path_open" | "path_filestat_get", "path") => Shape::Bytes,
        (HostModule::Wasi, _, _) => Shape::Length,
    }
}

/// `name(arg=value, ...)` with pointer pairs read from guest memory and `return_*` pointers
/// left out.
fn render_host_call(mem: &GuestMemory<'_>, row: &HostFunction, args: &[u64]) -> String {
    let mut parts = Vec::new();
    let params = row.params;
    let mut i = 0;
    while i < params.len() {
        let param = params[i];
        let value = args.get(i).copied().unwrap_or(0);
        if param.name.starts_with("return_") || (param.kind == Kind::Ptr && !param.name.ends_with("_ptr")) {
            i += 1;
            continue;
        }
        if let Some(base) = param.name.strip_suffix("_ptr") {
            let len_param = params.get(i + 1).filter(|p| p.name == format!("{base}_size") || p.name == format!("{base}_len"));
            if let Some(len_param) = len_param {
                let len = args.get(i + 1).copied().unwrap_or(0);
                let shown = match pair_shape(row, base) {
                    Shape::Length => format!("{}={len}", len_param.name),
                    shape => format!("{base}={}", read_shaped(mem, value, len, shape)),
                };
                parts.push(shown);
                i += 2;
                continue;
            }
            i += 1;
            continue;
        }
        let shown = if param.kind == Kind::Size && value == word_max(mem) {
            // "As much as there is": u32::MAX from a wasm32 guest, u64::MAX natively.
            "max".to_string()
        } else {
            scalar_text(param.name, param.kind, value)
        };
        parts.push(format!("{}={shown}", param.name));
        i += 1;
    }
    format!("{}({})", row.name, parts.join(", "))
}

/// The largest value of a guest word.
fn word_max(mem: &GuestMemory<'_>) -> u64 {
    match mem.word_size() {
        crate::WordSize::W32 => u64::from(u32::MAX),
        crate::WordSize::W64 => u64::MAX,
    }
}

/// A scalar argument: enums by name, signed kinds as signed numbers.
fn scalar_text(name: &str, kind: Kind, value: u64) -> String {
    match (name, kind) {
        ("level", _) => enum_text(value, |v| LogLevel::from_raw(v).map(LogLevel::name)),
        ("map_type", _) => enum_text(value, |v| MapType::from_raw(v).map(MapType::name)),
        ("buffer_type", _) => enum_text(value, |v| BufferType::from_raw(v).map(BufferType::name)),
        ("stream_type", _) => enum_text(value, |v| StreamType::from_raw(v).map(StreamType::name)),
        ("metric_type", _) => enum_text(value, |v| MetricType::from_raw(v).map(MetricType::name)),
        ("clock_id", _) => enum_text(value, |v| ClockId::from_raw(v).map(ClockId::name)),
        (_, Kind::I32) => (value as u32 as i32).to_string(),
        (_, Kind::I64) => (value as i64).to_string(),
        _ => value.to_string(),
    }
}

fn read_shaped(mem: &GuestMemory<'_>, ptr: u64, len: u64, shape: Shape) -> String {
    match shape {
        Shape::Length => len.to_string(),
        Shape::Bytes => match mem.read(ptr, len) {
            Ok(bytes) => quote(bytes),
            Err(_) => format!("<out of bounds: {len} bytes>"),
        },
        Shape::Map => match mem.read(ptr, len) {
            Ok(bytes) => map_text(bytes),
            Err(_) => format!("<out of bounds: {len} bytes>"),
        },
        Shape::Iovecs => iovecs_text(mem, ptr, len),
    }
}

/// Bytes as transcripts show them: a quoted string with escapes for quotes, backslashes,
/// control and non-ASCII bytes, cut after 160 bytes with the full length given.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = quote_whole(&bytes[..bytes.len().min(SHOWN_BYTES)]);
    if bytes.len() > SHOWN_BYTES {
        let _ = write!(out, "...({} bytes)", bytes.len());
    }
    out
}

/// [`quote`] without the cut: every byte, escaped the same way (a final state shows whole bodies).
pub fn quote_whole(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0 => out.push_str("\\0"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// A header map as transcripts show it: `{"name": "value", ...}` in order.
pub fn quote_map(map: &crate::HeaderMap) -> String {
    let pairs: Vec<String> = map.pairs().iter().map(|(k, v)| format!("{}: {}", quote(k), quote(v))).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A serialized header map as `{"k": "v", ...}`, or why it does not decode.
fn map_text(bytes: &[u8]) -> String {
    // Show what the guest sent, however large; the host function applies the real limits.
    let unlimited = MapLimits { max_bytes: usize::MAX, max_pairs: u32::MAX };
    match abi::decode_map(bytes, unlimited) {
        Ok(pairs) => {
            let shown: Vec<String> =
                pairs.iter().take(SHOWN_PAIRS).map(|(k, v)| format!("{}: {}", quote(k), quote(v))).collect();
            if pairs.len() > SHOWN_PAIRS {
                format!("{{{}, ...}}({} pairs)", shown.join(", "), pairs.len())
            } else {
                format!("{{{}}}", shown.join(", "))
            }
        }
        Err(e) => format!("<malformed map ({e}): {} bytes>", bytes.len()),
    }
}

/// WASI iovecs (pointer and length words) gathered into one quoted string.
fn iovecs_text(mem: &GuestMemory<'_>, iovs: u64, count: u64) -> String {
    let word = mem.word_size().bytes();
    let mut data = Vec::new();
    for i in 0..count.min(1024) {
        let entry = i.checked_mul(2 * word).and_then(|o| iovs.checked_add(o));
        let Some(entry) = entry else { return "<out of bounds>".into() };
        let (Ok(ptr), Ok(len)) = (mem.read_word(entry), mem.read_word(entry.saturating_add(word))) else {
            return "<out of bounds>".into();
        };
        match mem.read(ptr, len) {
            Ok(bytes) => data.extend_from_slice(bytes),
            Err(_) => return "<out of bounds>".into(),
        }
    }
    quote(&data)
}

/// The values a successful `env` host call handed back, as ` name=value` items.
fn render_outputs(mem: &GuestMemory<'_>, row: &HostFunction, args: &[u64]) -> String {
    let mut out = String::new();
    let params = row.params;
    let mut i = 0;
    while i < params.len() {
        let name = params[i].name;
        let ptr = args.get(i).copied().unwrap_or(0);
        let Some(rest) = name.strip_prefix("return_") else {
            i += 1;
            continue;
        };
        // A (pointer, size) pair of words naming bytes the host allocated.
        if let Some(base) = rest.strip_suffix("ptr").map(|b| b.trim_end_matches('_')) {
            let size_name = if base.is_empty() { "return_size".to_string() } else { format!("return_{base}_size") };
            if params.get(i + 1).is_some_and(|p| p.name == size_name) {
                let size_ptr = args.get(i + 1).copied().unwrap_or(0);
                let label = if base.is_empty() { "value" } else { base };
                let shown = match (mem.read_word(ptr), mem.read_word(size_ptr)) {
                    (Ok(addr), Ok(len)) => match mem.read(addr, len) {
                        Ok(bytes) if row.name == "proxy_get_header_map_pairs" => map_text(bytes),
                        Ok(bytes) => quote(bytes),
                        Err(_) => format!("<out of bounds: {len} bytes>"),
                    },
                    _ => "<out of bounds>".to_string(),
                };
                let _ = write!(out, " {label}={shown}");
                i += 2;
                continue;
            }
        }
        let shown = match rest {
            "size" | "written" => mem.read_word(ptr).ok().map(|v| v.to_string()),
            "level" => mem.read_u32(ptr).ok().map(|v| enum_text(u64::from(v), |l| LogLevel::from_raw(l).map(LogLevel::name))),
            "flags" | "code" | "call_id" | "stream_id" | "cas" | "queue_id" | "metric_id" => {
                mem.read_u32(ptr).ok().map(|v| v.to_string())
            }
            "value" => mem.read(ptr, 8).ok().map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a).to_string()
            }),
            // Times are not reproducible; everything else is named above.
            _ => None,
        };
        if let Some(shown) = shown {
            let _ = write!(out, " {rest}={shown}");
        }
        i += 1;
    }
    out
}

/// Records a host call in the caller's trace, if it has one, around `call`. The generated
/// entry points in [`crate::hostcalls`] call this only when tracing is on.
pub(crate) fn traced_host_call(
    cx: &mut dyn HostCx,
    name: &'static str,
    args: &[u64],
    call: impl FnOnce(&mut dyn HostCx) -> Result<i32, Trap>,
) -> Result<i32, Trap> {
    let row = abi::HOST_FUNCTIONS.iter().find(|f| f.name == name);
    let (Some(row), Some(handle)) = (row, cx.host().trace.clone()) else { return call(cx) };
    let index = {
        let (mem, _) = cx.parts();
        handle.begin_host_call(&mem, row, args)
    };
    let result = call(cx);
    let (mem, _) = cx.parts();
    handle.end_host_call(&mem, index, row, args, &result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostcalls::{self, testing::*};

    fn traced() -> (TestCx, Trace) {
        let mut cx = TestCx::new();
        let trace = Trace::new();
        cx.host.set_trace(Some(&trace), "test");
        (cx, trace)
    }

    #[test]
    fn host_calls_show_decoded_arguments_status_and_returned_values() {
        let (mut cx, trace) = traced();
        let key = cx.put(1000, b"x-a");
        hostcalls::proxy_get_header_map_value(&mut cx, 0, key.0, key.1, RET_PTR, RET_SIZE).unwrap();
        let missing = cx.put(1100, b"x-\0\xff");
        hostcalls::proxy_get_header_map_value(&mut cx, 0, missing.0, missing.1, RET_PTR, RET_SIZE).unwrap();
        hostcalls::proxy_get_header_map_value(&mut cx, 9, OOB, 4, RET_PTR, RET_SIZE).unwrap();
        let pairs = abi::encode_map(&[("a", "1")]);
        let map = cx.put(1200, &pairs);
        hostcalls::proxy_set_header_map_pairs(&mut cx, 0, map.0, map.1).unwrap();
        hostcalls::proxy_get_header_map_size(&mut cx, 0, RET_SCALAR).unwrap();
        assert_eq!(
            trace.render(),
            "proxy_get_header_map_value(map_type=HTTP_REQUEST_HEADERS, key=\"x-a\")\n\
             \x20 alloc(size=1) -> ok\n\
             \x20 => OK value=\"1\"\n\
             proxy_get_header_map_value(map_type=HTTP_REQUEST_HEADERS, key=\"x-\\0\\xff\") -> NOT_FOUND\n\
             proxy_get_header_map_value(map_type=9, key=<out of bounds: 4 bytes>) -> BAD_ARGUMENT\n\
             proxy_set_header_map_pairs(map_type=HTTP_REQUEST_HEADERS, map={\"a\": \"1\"}) -> OK\n\
             proxy_get_header_map_size(map_type=HTTP_REQUEST_HEADERS) -> OK size=16\n"
        );
    }

    #[test]
    fn traps_show_their_kind_and_malformed_maps_their_fault() {
        let (mut cx, trace) = traced();
        cx.alloc_traps = true;
        let key = cx.put(1000, b"x-a");
        assert!(hostcalls::proxy_get_header_map_value(&mut cx, 0, key.0, key.1, RET_PTR, RET_SIZE).is_err());
        let bad = cx.put(1200, &[5, 0, 0, 0]);
        hostcalls::proxy_set_header_map_pairs(&mut cx, 0, bad.0, bad.1).unwrap();
        let rendered = trace.render();
        assert!(rendered.contains("  alloc(size=1) -> trap: guest\n  => trap: guest\n"), "{rendered}");
        assert!(rendered.contains("map=<malformed map"), "{rendered}");
        assert!(rendered.ends_with("-> PARSE_FAILURE\n"), "{rendered}");
    }

    #[test]
    fn long_values_are_cut_and_sized() {
        let long = vec![b'a'; SHOWN_BYTES + 5];
        let shown = quote(&long);
        assert!(shown.ends_with(&format!("\"...({} bytes)", SHOWN_BYTES + 5)), "{shown}");
        assert_eq!(quote(b"a\"\\\n\t\r\x01"), "\"a\\\"\\\\\\n\\t\\r\\x01\"");
    }

    #[test]
    fn callbacks_nest_their_host_calls_and_vms_are_marked() {
        let trace = Trace::new();
        let a = trace.register_vm("a".into());
        let b = trace.register_vm("b".into());
        trace.note("> step");
        let i = a.begin_callback(Callback::OnRequestHeaders, 2, &[2, 3, 1]);
        let j = a.begin_callback(Callback::OnMemoryAllocate, 0, &[4]);
        a.end_callback(j, &Ok(0));
        a.end_callback(i, &Ok(1));
        let i = b.begin_callback(Callback::OnLog, 2, &[2]);
        b.end_callback(i, &Ok(0));
        let i = b.begin_callback(Callback::OnDone, 2, &[2]);
        b.end_callback(i, &Err(Trap::deadline("slow")));
        assert_eq!(
            trace.render(),
            "> step\n\
             [vm 1: a]\n\
             proxy_on_request_headers(context_id=2, num_headers=3, end_of_stream=true)\n\
             \x20 alloc(size=4) -> 0\n\
             \x20 => PAUSE\n\
             [vm 2: b]\n\
             proxy_on_log(context_id=2)\n\
             proxy_on_done(context_id=2) -> trap: deadline\n"
        );
        let records = trace.callbacks();
        let names: Vec<_> = records.iter().map(|r| r.callback).collect();
        assert_eq!(names, [Callback::OnRequestHeaders, Callback::OnMemoryAllocate, Callback::OnLog, Callback::OnDone]);
        assert_eq!(records[0].args, vec![3, 1]);
        assert_eq!(records[3].result, Some(Err("deadline".into())));
    }

    #[test]
    fn a_streamed_transcript_is_the_rendered_one_line_by_line() {
        let trace = Trace::new();
        let streamed = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = streamed.clone();
        trace.stream_to(move |line| sink.lock().unwrap().push(line.to_string()));
        let a = trace.register_vm("a".into());
        let b = trace.register_vm("b".into());
        trace.note("> step");
        let i = a.begin_callback(Callback::OnRequestHeaders, 2, &[2, 3, 1]);
        // The callback's line is out as soon as something nests in it.
        assert_eq!(streamed.lock().unwrap().len(), 2, "the note and the VM label");
        let j = a.begin_callback(Callback::OnMemoryAllocate, 0, &[4]);
        assert_eq!(streamed.lock().unwrap().last().unwrap(), "proxy_on_request_headers(context_id=2, num_headers=3, end_of_stream=true)");
        a.end_callback(j, &Ok(0));
        trace.note("< an effect");
        a.end_callback(i, &Ok(1));
        let i = b.begin_callback(Callback::OnLog, 2, &[2]);
        b.end_callback(i, &Ok(0));
        let i = b.begin_callback(Callback::OnDone, 2, &[2]);
        b.end_callback(i, &Err(Trap::deadline("slow")));
        // A call still running when the stream ends is shown unfinished.
        let k = a.begin_callback(Callback::OnTick, 2, &[2]);
        let _ = k;
        trace.finish_stream();
        let streamed = streamed.lock().unwrap().join("\n") + "\n";
        let rendered = trace.render();
        assert_eq!(streamed.strip_suffix("[vm 1: a]\nproxy_on_tick(context_id=2) -> (did not return)\n"), rendered.strip_suffix("[vm 1: a]\nproxy_on_tick(context_id=2)\n"), "{streamed}\n---\n{rendered}");
        assert!(rendered.contains("  alloc(size=4) -> 0\n  < an effect\n  => PAUSE\n"), "{rendered}");
    }
}
