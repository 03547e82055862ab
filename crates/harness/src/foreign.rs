//! Envoy's proxy-specific foreign functions, as the scripted embedder answers them: they act on
//! the proxy's own state (filter state, declared properties, the route cache), which a
//! scripted exchange does not have, so each call is recorded as an effect, shown in the
//! transcript (`< foreign ...`) and in `pwhost run --json` (`foreign`). Arguments are decoded as
//! Envoy decodes them (`source/extensions/common/wasm/foreign.cc` and its `ext/*.proto`).
//!
//! The ones that need no proxy (`compress`, `uncompress`, `verify_signature`) are the host's own
//! ([`proxy_wasm_host::foreign`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prost::Message as _;
use proxy_wasm_host::{quote, ForeignCx, Services, Status, VmToken};

/// A call of a proxy-specific foreign function, recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignEffect {
    /// The function: `set_envoy_filter_state`, `declare_property` or `clear_route_cache`.
    pub function: &'static str,
    /// The context it was called in.
    pub context_id: u32,
    /// Its arguments, decoded: (field, value) in the message's order.
    pub arguments: Vec<(&'static str, ForeignArg)>,
}

/// One decoded argument of a [`ForeignEffect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForeignArg {
    /// A string or bytes field, exactly as the plugin sent it.
    Bytes(Vec<u8>),
    /// A bool or an enum value, by its name in Envoy's proto (`true`, `String`, `FilterChain`).
    Name(String),
}

impl ForeignArg {
    /// As the transcript shows it: bytes quoted and escaped, names bare.
    pub fn describe(&self) -> String {
        match self {
            ForeignArg::Bytes(bytes) => quote(bytes),
            ForeignArg::Name(name) => name.clone(),
        }
    }
}

impl ForeignEffect {
    /// As the transcript shows it: `foreign NAME context=N field=value ...`.
    pub fn describe(&self) -> String {
        let mut line = format!("foreign {} context={}", self.function, self.context_id);
        for (field, value) in &self.arguments {
            line.push_str(&format!(" {field}={}", value.describe()));
        }
        line
    }
}

/// Envoy's `SetEnvoyFilterStateArguments` (`ext/set_envoy_filter_state.proto`).
#[derive(Clone, PartialEq, prost::Message)]
struct SetEnvoyFilterStateArguments {
    #[prost(string, tag = "1")]
    path: String,
    #[prost(string, tag = "2")]
    value: String,
    #[prost(int32, tag = "3")]
    span: i32,
}

/// Envoy's `DeclarePropertyArguments` (`ext/declare_property.proto`).
#[derive(Clone, PartialEq, prost::Message)]
struct DeclarePropertyArguments {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(bool, tag = "2")]
    readonly: bool,
    #[prost(int32, tag = "3")]
    r#type: i32,
    #[prost(bytes = "vec", tag = "4")]
    schema: Vec<u8>,
    #[prost(int32, tag = "5")]
    span: i32,
}

/// Envoy's `LifeSpan` by number (an unknown one is `FilterChain`, as Envoy reads it).
fn span(n: i32) -> &'static str {
    match n {
        1 => "DownstreamRequest",
        2 => "DownstreamConnection",
        _ => "FilterChain",
    }
}

/// Envoy's `WasmType` by number (an unknown one is `Bytes`, as Envoy reads it).
fn wasm_type(n: i32) -> &'static str {
    match n {
        1 => "String",
        2 => "FlatBuffers",
        3 => "Protobuf",
        _ => "Bytes",
    }
}

/// Registers `set_envoy_filter_state`, `declare_property` and `clear_route_cache` in `services`,
/// each recording its calls in `effects`.
///
/// Statuses as Envoy's: BAD_ARGUMENT for arguments that do not parse; `set_envoy_filter_state`
/// outside a stream (a root context) NOT_FOUND, as Envoy has no stream info there;
/// `declare_property` of a name the context already declared BAD_ARGUMENT. Envoy also
/// refuses a filter-state key no factory is registered for; this embedder has no registry and
/// accepts any key (a documented difference).
pub fn register(services: &Services, effects: Arc<Mutex<Vec<ForeignEffect>>>) {
    let record = move |effect: ForeignEffect| effects.lock().unwrap_or_else(|e| e.into_inner()).push(effect);
    let record = Arc::new(record);
    let r = record.clone();
    services.register_foreign_function(
        "set_envoy_filter_state",
        Arc::new(move |cx: &ForeignCx<'_>, args: &[u8]| {
            let args = SetEnvoyFilterStateArguments::decode(args).map_err(|_| Status::BadArgument)?;
            if !cx.stream {
                return Err(Status::NotFound);
            }
            r(ForeignEffect {
                function: "set_envoy_filter_state",
                context_id: cx.context_id,
                arguments: vec![
                    ("path", ForeignArg::Bytes(args.path.into_bytes())),
                    ("value", ForeignArg::Bytes(args.value.into_bytes())),
                    ("span", ForeignArg::Name(span(args.span).to_string())),
                ],
            });
            Ok(Vec::new())
        }),
    );
    let r = record.clone();
    // Envoy keeps each context's declarations and refuses a name declared again (BAD_ARGUMENT).
    let declared: Mutex<HashSet<(VmToken, u32, String)>> = Mutex::default();
    services.register_foreign_function(
        "declare_property",
        Arc::new(move |cx: &ForeignCx<'_>, args: &[u8]| {
            let args = DeclarePropertyArguments::decode(args).map_err(|_| Status::BadArgument)?;
            let key = (cx.vm, cx.context_id, args.name.clone());
            if !declared.lock().unwrap_or_else(|e| e.into_inner()).insert(key) {
                return Err(Status::BadArgument);
            }
            r(ForeignEffect {
                function: "declare_property",
                context_id: cx.context_id,
                arguments: vec![
                    ("name", ForeignArg::Bytes(args.name.into_bytes())),
                    ("readonly", ForeignArg::Name(args.readonly.to_string())),
                    ("type", ForeignArg::Name(wasm_type(args.r#type).to_string())),
                    ("schema", ForeignArg::Bytes(args.schema)),
                    ("span", ForeignArg::Name(span(args.span).to_string())),
                ],
            });
            Ok(Vec::new())
        }),
    );
    services.register_foreign_function(
        "clear_route_cache",
        Arc::new(move |cx: &ForeignCx<'_>, _: &[u8]| {
            record(ForeignEffect { function: "clear_route_cache", context_id: cx.context_id, arguments: Vec::new() });
            Ok(Vec::new())
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_decoded_and_recorded() {
        let services = Services::new();
        let effects = Arc::new(Mutex::new(Vec::new()));
        register(&services, effects.clone());
        let stream = ForeignCx { plugin: None, context_id: 2, stream: true, vm: VmToken(1) };
        let root = ForeignCx { context_id: 1, stream: false, ..stream };
        let set = services.foreign_function("set_envoy_filter_state").unwrap();
        let args = SetEnvoyFilterStateArguments { path: "envoy.tcp_proxy.cluster".into(), value: "east".into(), span: 1 };
        assert_eq!(set(&stream, &args.encode_to_vec()), Ok(Vec::new()));
        assert_eq!(set(&root, &args.encode_to_vec()), Err(Status::NotFound), "no stream at a root context");
        assert_eq!(set(&stream, b"\xff\xff"), Err(Status::BadArgument));
        let declare = services.foreign_function("declare_property").unwrap();
        let args = DeclarePropertyArguments { name: "p".into(), readonly: true, r#type: 1, schema: Vec::new(), span: 0 };
        assert_eq!(declare(&root, &args.encode_to_vec()), Ok(Vec::new()));
        assert_eq!(declare(&root, &args.encode_to_vec()), Err(Status::BadArgument), "declared twice");
        assert_eq!(declare(&stream, &args.encode_to_vec()), Ok(Vec::new()), "another context's own");
        assert_eq!(services.foreign_function("clear_route_cache").unwrap()(&stream, b""), Ok(Vec::new()));
        let shown: Vec<String> = effects.lock().unwrap().iter().map(ForeignEffect::describe).collect();
        assert_eq!(
            shown,
            [
                r#"foreign set_envoy_filter_state context=2 path="envoy.tcp_proxy.cluster" value="east" span=DownstreamRequest"#,
                r#"foreign declare_property context=1 name="p" readonly=true type=String schema="" span=FilterChain"#,
                r#"foreign declare_property context=2 name="p" readonly=true type=String schema="" span=FilterChain"#,
                "foreign clear_route_cache context=2",
            ]
        );
    }
}
