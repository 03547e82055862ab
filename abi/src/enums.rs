//! Every enum and status code of the ABI, with its raw value and its one display name.

/// Defines a `#[repr(u32)]` enum with a failing raw conversion, a display name per value,
/// and the list of all values.
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in ascending order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )*];

            /// The value for a raw number, or `None` when the ABI defines no such value.
            pub const fn from_raw(raw: $repr) -> Option<Self> {
                match raw {
                    $( $value => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The raw number on the wire.
            pub const fn raw(self) -> $repr {
                self as $repr
            }

            /// The name the ABI documents use, for example `HTTP_REQUEST_HEADERS`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }

            /// The value whose [`name`](Self::name) is `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $text => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

abi_enum! {
    /// The status every `env` host function returns.
    ///
    /// 5, 9 and 11 exist only in the C++ host; our host never returns them.
    pub enum Status: u32 {
        /// Success.
        Ok = 0 => "OK",
        /// The key, property, queue, metric, call or buffer does not exist (here, now).
        NotFound = 1 => "NOT_FOUND",
        /// An argument is out of range or not allowed in this callback.
        BadArgument = 2 => "BAD_ARGUMENT",
        /// A value could not be serialized.
        SerializationFailure = 3 => "SERIALIZATION_FAILURE",
        /// Input could not be parsed.
        ParseFailure = 4 => "PARSE_FAILURE",
        /// C++ host only: a bad expression.
        BadExpression = 5 => "BAD_EXPRESSION",
        /// A pointer and length do not lie wholly inside guest memory.
        InvalidMemoryAccess = 6 => "INVALID_MEMORY_ACCESS",
        /// A queue has nothing to dequeue.
        Empty = 7 => "EMPTY",
        /// The compare-and-swap value of shared data did not match.
        CasMismatch = 8 => "CAS_MISMATCH",
        /// C++ host only: a result mismatch.
        ResultMismatch = 9 => "RESULT_MISMATCH",
        /// The host failed to do what was asked.
        InternalFailure = 10 => "INTERNAL_FAILURE",
        /// C++ host only: a broken connection.
        BrokenConnection = 11 => "BROKEN_CONNECTION",
        /// This host does not implement the call (or the plugin may not use it).
        Unimplemented = 12 => "UNIMPLEMENTED",
    }
}

abi_enum! {
    /// Log levels of `proxy_log` and `proxy_get_log_level`.
    pub enum LogLevel: u32 {
        /// Trace.
        Trace = 0 => "TRACE",
        /// Debug.
        Debug = 1 => "DEBUG",
        /// Info.
        Info = 2 => "INFO",
        /// Warn.
        Warn = 3 => "WARN",
        /// Error.
        Error = 4 => "ERROR",
        /// Critical.
        Critical = 5 => "CRITICAL",
    }
}

abi_enum! {
    /// The two values every stream callback shares. Any other value means something that
    /// depends on the callback (headers 2 continue, 3 and more stop all iteration; bodies 2
    /// stop with watermarks, 3 and more stop without buffering; trailers and TCP data stop on
    /// any non-zero value: proxy-wasm-cpp-host `ContextBase::convertVmCallResultTo*Status`);
    /// the host reads it per callback (`proxy_wasm_host::Action`).
    pub enum Action: u32 {
        /// Go on with the filter chain.
        Continue = 0 => "CONTINUE",
        /// Stop this direction until `proxy_continue_stream` or a local response.
        Pause = 1 => "PAUSE",
    }
}

abi_enum! {
    /// Buffers the host exposes through `proxy_get_buffer_bytes` and friends.
    pub enum BufferType: u32 {
        /// Request body of the HTTP stream.
        HttpRequestBody = 0 => "HTTP_REQUEST_BODY",
        /// Response body of the HTTP stream.
        HttpResponseBody = 1 => "HTTP_RESPONSE_BODY",
        /// TCP bytes from the client.
        DownstreamData = 2 => "DOWNSTREAM_DATA",
        /// TCP bytes from the server.
        UpstreamData = 3 => "UPSTREAM_DATA",
        /// Body of an HTTP callout's response.
        HttpCallResponseBody = 4 => "HTTP_CALL_RESPONSE_BODY",
        /// A gRPC message received (also called GRPC_CALL_MESSAGE).
        GrpcReceiveBuffer = 5 => "GRPC_RECEIVE_BUFFER",
        /// The VM configuration (0.2.x).
        VmConfiguration = 6 => "VM_CONFIGURATION",
        /// The plugin configuration (0.2.x).
        PluginConfiguration = 7 => "PLUGIN_CONFIGURATION",
        /// The arguments of a foreign function call back into the plugin (0.2.x).
        ForeignFunctionArguments = 8 => "FOREIGN_FUNCTION_ARGUMENTS",
    }
}

abi_enum! {
    /// Header maps the host exposes.
    pub enum MapType: u32 {
        /// Request headers.
        HttpRequestHeaders = 0 => "HTTP_REQUEST_HEADERS",
        /// Request trailers.
        HttpRequestTrailers = 1 => "HTTP_REQUEST_TRAILERS",
        /// Response headers.
        HttpResponseHeaders = 2 => "HTTP_RESPONSE_HEADERS",
        /// Response trailers.
        HttpResponseTrailers = 3 => "HTTP_RESPONSE_TRAILERS",
        /// gRPC initial metadata received.
        GrpcReceiveInitialMetadata = 4 => "GRPC_RECEIVE_INITIAL_METADATA",
        /// gRPC trailing metadata received.
        GrpcReceiveTrailingMetadata = 5 => "GRPC_RECEIVE_TRAILING_METADATA",
        /// Headers of an HTTP callout's response.
        HttpCallResponseHeaders = 6 => "HTTP_CALL_RESPONSE_HEADERS",
        /// Trailers of an HTTP callout's response.
        HttpCallResponseTrailers = 7 => "HTTP_CALL_RESPONSE_TRAILERS",
    }
}

abi_enum! {
    /// Directions of `proxy_continue_stream` and `proxy_close_stream` (0.2.x).
    pub enum StreamType: u32 {
        /// The HTTP request.
        HttpRequest = 0 => "HTTP_REQUEST",
        /// The HTTP response.
        HttpResponse = 1 => "HTTP_RESPONSE",
        /// TCP: client to server.
        Downstream = 2 => "DOWNSTREAM",
        /// TCP: server to client.
        Upstream = 3 => "UPSTREAM",
    }
}

abi_enum! {
    /// Who closed a TCP connection.
    pub enum PeerType: u32 {
        /// Unknown.
        Unknown = 0 => "UNKNOWN",
        /// This proxy.
        Local = 1 => "LOCAL",
        /// The peer.
        Remote = 2 => "REMOTE",
    }
}

abi_enum! {
    /// Kinds of metric.
    pub enum MetricType: u32 {
        /// Only goes up.
        Counter = 0 => "COUNTER",
        /// Goes up and down, or is set.
        Gauge = 1 => "GAUGE",
        /// Records samples.
        Histogram = 2 => "HISTOGRAM",
    }
}

abi_enum! {
    /// The WASI preview1 errno values our subset returns.
    pub enum Errno: u32 {
        /// No error.
        Success = 0 => "SUCCESS",
        /// Bad file descriptor.
        Badf = 8 => "BADF",
        /// Not a directory.
        Notdir = 20 => "NOTDIR",
        /// Bad address.
        Fault = 21 => "FAULT",
        /// Invalid argument.
        Inval = 28 => "INVAL",
        /// No such file or directory.
        Noent = 44 => "NOENT",
        /// Function not supported.
        Nosys = 52 => "NOSYS",
        /// Not supported.
        Notsup = 58 => "NOTSUP",
        /// Capabilities insufficient: the C++ host's answer for a WASI function a plugin's
        /// capability restriction does not allow (`exports.h` `_CREATE_WASI_STUB`).
        Notcapable = 76 => "NOTCAPABLE",
    }
}

abi_enum! {
    /// WASI clocks.
    pub enum ClockId: u32 {
        /// Wall clock.
        Realtime = 0 => "REALTIME",
        /// Monotonic clock.
        Monotonic = 1 => "MONOTONIC",
        /// Process CPU time (not supported).
        ProcessCputime = 2 => "PROCESS_CPUTIME_ID",
        /// Thread CPU time (not supported).
        ThreadCputime = 3 => "THREAD_CPUTIME_ID",
    }
}

impl MapType {
    /// Whether this map belongs to the HTTP stream itself (and not to a callout or gRPC call).
    pub const fn is_stream_map(self) -> bool {
        matches!(
            self,
            MapType::HttpRequestHeaders
                | MapType::HttpRequestTrailers
                | MapType::HttpResponseHeaders
                | MapType::HttpResponseTrailers
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_match_the_abi_reference() {
        assert_eq!(Status::InvalidMemoryAccess.raw(), 6);
        assert_eq!(Status::Unimplemented.raw(), 12);
        assert_eq!(BufferType::ForeignFunctionArguments.raw(), 8);
        assert_eq!(MapType::HttpCallResponseTrailers.raw(), 7);
        assert_eq!(Errno::Notsup.raw(), 58);
        assert_eq!(Errno::Nosys.raw(), 52);
        assert_eq!(LogLevel::Critical.raw(), 5);
    }

    #[test]
    fn unknown_raw_values_are_refused() {
        assert_eq!(MapType::from_raw(8), None);
        assert_eq!(BufferType::from_raw(9), None);
        assert_eq!(LogLevel::from_raw(6), None);
        assert_eq!(Status::from_raw(13), None);
        assert_eq!(Errno::from_raw(1), None);
    }

    #[test]
    fn names_round_trip() {
        for m in MapType::ALL {
            assert_eq!(MapType::from_name(m.name()), Some(*m));
            assert_eq!(MapType::from_raw(m.raw()), Some(*m));
        }
        assert_eq!(Status::from_name("CAS_MISMATCH"), Some(Status::CasMismatch));
        assert_eq!(format!("{}", BufferType::VmConfiguration), "VM_CONFIGURATION");
    }
}
