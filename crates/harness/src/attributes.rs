//! Envoy's well-known attributes, answered from the exchange's steps: what
//! `proxy_get_property` reads as `request.path`, `response.code`, `source.address` and the
//! rest when a plugin runs in Envoy, here computed from the stream as the steps built it.
//!
//! Each attribute exists only once the part of the stream it describes has happened:
//! `request.*` from the request headers on, `response.*` from the response headers (or a local
//! reply) on, `response.trailers` from the response trailers on; before that it is `NOT_FOUND`,
//! as in Envoy. The connection's attributes (`connection.*`, `source.*`, `destination.*`) come
//! from the exchange's `connection` settings and exist from the start. Values are encoded as
//! Envoy encodes them for Wasm: strings as their bytes, integers as 8 bytes little-endian,
//! booleans as one byte, timestamps and durations as 8-byte nanoseconds, header maps as the
//! serialized pairs of `proxy_get_header_map_pairs`.
//!
//! An exchange's `properties` are answered first, so they add paths or override these.

use std::any::Any;

use proxy_wasm_host::abi::{self, BufferType, MapType, Status};
use proxy_wasm_host::{HeaderMap, MemoryStream, Stream, StreamEffect};

use crate::scripted::Step;

/// The connection a stream runs on: the exchange's `connection` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The client's address, `ip:port` (`source.address`; `source.port` is its port).
    pub source_address: String,
    /// The proxy's listener address, `ip:port` (`destination.address`, `destination.port`).
    pub destination_address: String,
    /// Whether the client presented a certificate the proxy verified (`connection.mtls`).
    pub mtls: bool,
    /// The SNI the client asked for (`connection.requested_server_name`).
    pub requested_server_name: String,
    /// The TLS version (`connection.tls_version`), empty for plain text (then not found).
    pub tls_version: String,
    /// The HTTP protocol (`request.protocol`), for example `HTTP/1.1` or `HTTP/2`.
    pub protocol: String,
}

impl Default for Connection {
    /// A plain-text HTTP/1.1 connection from 192.0.2.1:52000 to 192.0.2.2:8080 (documentation
    /// addresses, RFC 5737).
    fn default() -> Self {
        Connection {
            source_address: "192.0.2.1:52000".into(),
            destination_address: "192.0.2.2:8080".into(),
            mtls: false,
            requested_server_name: String::new(),
            tls_version: String::new(),
            protocol: "HTTP/1.1".into(),
        }
    }
}

/// When the parts of a stream happened, by the scripted clock (nanoseconds since the epoch).
#[derive(Clone, Debug, Default)]
struct Phases {
    request_headers: Option<u64>,
    request_end: Option<u64>,
    response_headers: Option<u64>,
    response_trailers: bool,
}

/// The stream the scripted runner hands the host: the data ([`MemoryStream`], which does the
/// work), plus what Envoy's attributes need: when each part happened and the connection.
pub struct ScriptedStream {
    /// The stream's data and effects.
    pub memory: MemoryStream,
    connection: Connection,
    /// The connection's id (`connection.id`): one per stream here.
    connection_id: u64,
    phases: Phases,
}

impl ScriptedStream {
    /// A stream on `connection` (numbered `connection_id`) with `memory`'s data and properties.
    pub fn new(memory: MemoryStream, connection: Connection, connection_id: u64) -> Self {
        ScriptedStream { memory, connection, connection_id, phases: Phases::default() }
    }

    /// Notes what `step` (about to be applied to this stream) means for the attributes: when
    /// the request and the response began and ended, by the scripted clock `now`.
    pub fn step(&mut self, step: &Step, now: u64) {
        match step {
            Step::RequestHeaders { end_of_stream, .. } => self.request_headers(now, *end_of_stream),
            Step::RequestBody { end_of_stream: true, .. } | Step::RequestTrailers(_) => self.request_end(now),
            Step::ResponseHeaders { .. } => self.response_headers(now),
            Step::ResponseTrailers(_) => self.response_trailers(),
            _ => {}
        }
    }

    /// Notes that the request headers arrived at `now` (and whether the request ended there).
    pub fn request_headers(&mut self, now: u64, end_of_stream: bool) {
        self.phases.request_headers.get_or_insert(now);
        if end_of_stream {
            self.request_end(now);
        }
    }

    /// Notes that the request ended at `now`.
    pub fn request_end(&mut self, now: u64) {
        self.phases.request_end.get_or_insert(now);
    }

    /// Notes that the response headers arrived at `now`.
    pub fn response_headers(&mut self, now: u64) {
        self.phases.response_headers.get_or_insert(now);
    }

    /// Notes that the response trailers arrived.
    pub fn response_trailers(&mut self) {
        self.phases.response_trailers = true;
    }

    /// The attribute at `path` (segments joined by 0 bytes), if Envoy would have it now.
    fn attribute(&self, path: &[u8]) -> Option<Vec<u8>> {
        let m = &self.memory;
        let request = self.phases.request_headers.is_some();
        let reply = m.local_reply();
        let response = self.phases.response_headers.is_some() || reply.is_some();
        let header = |map: &HeaderMap, name: &[u8]| map.get(name).map(|v| v.into_owned());
        let int = |v: i64| v.to_le_bytes().to_vec();
        let segments: Vec<&[u8]> = path.split(|&b| b == 0).collect();
        Some(match segments.as_slice() {
            [b"request", rest] if request => match *rest {
                b"path" => header(&m.request_headers, b":path")?,
                b"url_path" => {
                    let path = header(&m.request_headers, b":path")?;
                    path.split(|&b| b == b'?').next().unwrap_or_default().to_vec()
                }
                b"host" => header(&m.request_headers, b":authority")?,
                b"scheme" => header(&m.request_headers, b":scheme")?,
                b"method" => header(&m.request_headers, b":method")?,
                b"referer" => header(&m.request_headers, b"referer")?,
                b"useragent" => header(&m.request_headers, b"user-agent")?,
                b"id" => header(&m.request_headers, b"x-request-id")?,
                b"protocol" => self.connection.protocol.as_bytes().to_vec(),
                b"headers" => pairs(&m.request_headers),
                b"time" => int(self.phases.request_headers? as i64),
                b"duration" => int(self.phases.request_end?.saturating_sub(self.phases.request_headers?) as i64),
                b"size" => int(body_size(&m.request_headers, &m.request_body)),
                b"total_size" => int(headers_size(&m.request_headers) + m.request_body.len() as i64),
                _ => return None,
            },
            [b"response", rest] if response => match *rest {
                b"code" => match reply {
                    Some(reply) => int(i64::from(reply.status)),
                    None => int(std::str::from_utf8(&header(&m.response_headers, b":status")?).ok()?.parse().ok()?),
                },
                b"code_details" => match reply {
                    Some(reply) => reply.details.as_bytes().to_vec(),
                    None => b"via_upstream".to_vec(),
                },
                b"flags" => int(0),
                b"grpc_status" => {
                    let status = header(&m.response_trailers, b"grpc-status").or_else(|| header(&m.response_headers, b"grpc-status"))?;
                    int(std::str::from_utf8(&status).ok()?.parse().ok()?)
                }
                b"headers" => pairs(&m.response_headers),
                b"trailers" if self.phases.response_trailers => pairs(&m.response_trailers),
                b"size" => int(body_size(&m.response_headers, &m.response_body)),
                b"total_size" => int(headers_size(&m.response_headers) + m.response_body.len() as i64),
                _ => return None,
            },
            [b"connection", rest] => match *rest {
                b"id" => int(self.connection_id as i64),
                b"mtls" => vec![u8::from(self.connection.mtls)],
                b"requested_server_name" => self.connection.requested_server_name.as_bytes().to_vec(),
                b"tls_version" if !self.connection.tls_version.is_empty() => self.connection.tls_version.as_bytes().to_vec(),
                _ => return None,
            },
            [b"source", rest] => address(&self.connection.source_address, rest)?,
            [b"destination", rest] => address(&self.connection.destination_address, rest)?,
            _ => return None,
        })
    }
}

/// A header map as Envoy hands a map-valued attribute to Wasm: serialized pairs.
fn pairs(map: &HeaderMap) -> Vec<u8> {
    abi::encode_map(map.pairs())
}

/// The body size Envoy reports: the `content-length` header when there is one, else the bytes
/// seen so far.
fn body_size(headers: &HeaderMap, body: &[u8]) -> i64 {
    headers
        .get(b"content-length")
        .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok())
        .unwrap_or(body.len() as i64)
}

/// The headers' size as Envoy approximates it: names and values.
fn headers_size(headers: &HeaderMap) -> i64 {
    headers.pairs().iter().map(|(k, v)| (k.len() + v.len()) as i64).sum()
}

/// `address` (the whole `ip:port`) or `port` (an integer) of an address.
fn address(address: &str, field: &[u8]) -> Option<Vec<u8>> {
    match field {
        b"address" => Some(address.as_bytes().to_vec()),
        b"port" => {
            let port: i64 = address.rsplit_once(':')?.1.parse().ok()?;
            Some(port.to_le_bytes().to_vec())
        }
        _ => None,
    }
}

impl Stream for ScriptedStream {
    fn map(&mut self, map: MapType) -> Option<&mut HeaderMap> {
        self.memory.map(map)
    }

    fn buffer(&mut self, buffer: BufferType) -> Option<&mut Vec<u8>> {
        self.memory.buffer(buffer)
    }

    fn effect(&mut self, effect: StreamEffect) -> Result<(), Status> {
        self.memory.effect(effect)
    }

    /// The exchange's properties and what the plugin set first, then Envoy's attributes.
    fn property(&self, path: &[u8]) -> Option<Vec<u8>> {
        self.memory.property(path).or_else(|| self.attribute(path))
    }

    fn set_property(&mut self, path: &[u8], value: &[u8]) -> Option<Result<(), Status>> {
        self.memory.set_property(path, value)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(s: &ScriptedStream, path: &str) -> Option<Vec<u8>> {
        s.property(path.replace('.', "\0").as_bytes())
    }

    fn int(v: i64) -> Option<Vec<u8>> {
        Some(v.to_le_bytes().to_vec())
    }

    #[test]
    fn attributes_follow_the_stream() {
        let mut s = ScriptedStream::new(MemoryStream::new(), Connection::default(), 7);
        // Before the request: only the connection.
        assert_eq!(get(&s, "request.path"), None);
        assert_eq!(get(&s, "source.address"), Some(b"192.0.2.1:52000".to_vec()));
        assert_eq!(get(&s, "source.port"), int(52000));
        assert_eq!(get(&s, "destination.port"), int(8080));
        assert_eq!(get(&s, "connection.id"), int(7));
        assert_eq!(get(&s, "connection.mtls"), Some(vec![0]));
        assert_eq!(get(&s, "connection.tls_version"), None, "plain text");

        s.memory.request_headers = HeaderMap::from_pairs([(":path", "/a/b?x=1"), (":method", "POST"), (":authority", "h"), ("content-length", "10")]);
        s.request_headers(1_000, false);
        assert_eq!(get(&s, "request.path"), Some(b"/a/b?x=1".to_vec()));
        assert_eq!(get(&s, "request.url_path"), Some(b"/a/b".to_vec()));
        assert_eq!(get(&s, "request.method"), Some(b"POST".to_vec()));
        assert_eq!(get(&s, "request.host"), Some(b"h".to_vec()));
        assert_eq!(get(&s, "request.scheme"), None, "no :scheme header");
        assert_eq!(get(&s, "request.time"), int(1_000));
        assert_eq!(get(&s, "request.size"), int(10), "content-length");
        assert_eq!(get(&s, "request.duration"), None, "the request goes on");
        assert_eq!(get(&s, "request.headers"), Some(abi::encode_map(s.memory.request_headers.pairs())));
        assert_eq!(get(&s, "response.code"), None, "no response yet");
        s.request_end(4_000);
        assert_eq!(get(&s, "request.duration"), int(3_000));

        s.memory.response_headers = HeaderMap::from_pairs([(":status", "503")]);
        s.response_headers(5_000);
        assert_eq!(get(&s, "response.code"), int(503));
        assert_eq!(get(&s, "response.code_details"), Some(b"via_upstream".to_vec()));
        assert_eq!(get(&s, "response.trailers"), None, "no trailers yet");
        s.memory.response_trailers = HeaderMap::from_pairs([("grpc-status", "14")]);
        s.response_trailers();
        assert_eq!(get(&s, "response.grpc_status"), int(14));
        assert_eq!(get(&s, "response.trailers"), Some(abi::encode_map(&[("grpc-status", "14")])));
        // The exchange's properties (and the plugin's) come first.
        s.memory.properties.insert(b"response\0code".to_vec(), b"override".to_vec());
        assert_eq!(get(&s, "response.code"), Some(b"override".to_vec()));
        assert_eq!(get(&s, "nothing.here"), None);
    }
}
