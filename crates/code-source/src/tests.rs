//! Loading from files, inline bytes and a tiny HTTP server on 127.0.0.1 in the test itself
//! (bounded: it serves the connections a test expects, for ten seconds at most).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// What the server does with one connection.
#[derive(Clone)]
enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status, empty body.
    Status(u16),
    /// These raw bytes instead of an HTTP answer.
    Raw(Vec<u8>),
    /// Nothing for this long, then close.
    Hang(Duration),
}

struct Server {
    uri: String,
    hits: Arc<AtomicU32>,
}

/// Serves `replies` in order (the last one repeats) to at most `max` connections, for ten
/// seconds at most.
fn serve(replies: Vec<Reply>, max: u32) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let uri = format!("http://{}/plugin.wasm", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < max && Instant::now() < until {
            match listener.accept() {
                Ok((stream, _)) => {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let reply = replies[(served as usize).min(replies.len() - 1)].clone();
                    served += 1;
                    answer(stream, reply);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { uri, hits }
}

fn answer(mut stream: TcpStream, reply: Reply) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let out = match reply {
        Reply::Body(body) => {
            let mut out = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).into_bytes();
            out.extend_from_slice(&body);
            out
        }
        Reply::Status(code) => format!("HTTP/1.1 {code} Nope\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes(),
        Reply::Raw(bytes) => bytes,
        Reply::Hang(d) => {
            std::thread::sleep(d);
            Vec::new()
        }
    };
    let _ = stream.write_all(&out);
}

fn module() -> Vec<u8> {
    b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0".to_vec()
}

fn remote(uri: &str, sha256: Option<Digest>, num_retries: u32, timeout_ms: u64) -> CodeSpec {
    CodeSpec {
        source: Source::Remote(Remote {
            uri: uri.to_string(),
            timeout: Duration::from_millis(timeout_ms),
            retry: RetryPolicy {
                num_retries,
                base_interval: Duration::from_millis(10),
                max_interval: Duration::from_millis(20),
            },
        }),
        sha256,
        signature: None,
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("code-source-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn remote_code_is_fetched_checked_and_then_served_from_the_cache() {
    let server = serve(vec![Reply::Body(module())], 1);
    let cache = temp_dir("cache");
    let loader = Loader::new().with_cache_dir(&cache);
    let spec = remote(&server.uri, Some(Digest::of(&module())), 0, 5000);
    let first = loader.load(&spec).unwrap();
    assert_eq!(first.bytes, module());
    assert_eq!((first.from_cache, first.attempts), (false, 1));
    assert!(cache.join(format!("{}.wasm", Digest::of(&module()))).is_file());
    let again = loader.load(&spec).unwrap();
    assert_eq!((again.bytes, again.from_cache, again.attempts), (module(), true, 0));
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "the cache answered the second load");
}

#[test]
fn a_remote_source_needs_its_sha256() {
    let e = Loader::new().load(&remote("http://127.0.0.1:9/x.wasm", None, 0, 100)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "remote code http://127.0.0.1:9/x.wasm has no sha256: a remote source must name the SHA-256 its bytes must have"
    );
}

#[test]
fn garbage_with_a_200_is_refused_with_both_hashes_and_not_cached() {
    let server = serve(vec![Reply::Body(b"<html>not a module</html>".to_vec())], 1);
    let cache = temp_dir("garbage");
    let expected = Digest::of(&module());
    let e = Loader::new().with_cache_dir(&cache).load(&remote(&server.uri, Some(expected), 3, 5000)).unwrap_err();
    let actual = Digest::of(b"<html>not a module</html>");
    assert_eq!(
        e.to_string(),
        format!("{} does not have the expected sha256: expected {expected}, got {actual}; refusing it", server.uri)
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "a wrong hash is not retried");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0, "nothing cached");
}

#[test]
fn a_server_error_is_retried_by_the_policy() {
    let server = serve(vec![Reply::Status(503), Reply::Body(module())], 2);
    let loaded = Loader::new().load(&remote(&server.uri, Some(Digest::of(&module())), 1, 5000)).unwrap();
    assert_eq!(loaded.attempts, 2);
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

#[test]
fn a_client_error_is_not_retried() {
    let server = serve(vec![Reply::Status(404)], 3);
    let e = Loader::new().load(&remote(&server.uri, Some(Digest::of(&module())), 2, 5000)).unwrap_err();
    assert_eq!(e.to_string(), format!("cannot fetch {} (1 attempt): the server answered HTTP 404", server.uri));
}

#[test]
fn a_server_that_never_answers_times_out_on_every_attempt() {
    let server = serve(vec![Reply::Hang(Duration::from_millis(1500))], 2);
    let e = Loader::new().load(&remote(&server.uri, Some(Digest::of(&module())), 1, 200)).unwrap_err();
    let SourceError::Fetch { attempts, reason, .. } = &e else { panic!("{e}") };
    assert_eq!(*attempts, 2);
    assert!(reason.to_lowercase().contains("timeout") || reason.to_lowercase().contains("timed out"), "{e}");
    assert!(e.to_string().starts_with(&format!("cannot fetch {} (2 attempts): ", server.uri)), "{e}");
}

#[test]
fn an_answer_that_is_not_http_is_an_error_after_the_retries() {
    let server = serve(vec![Reply::Raw(b"\x16\x03\x01garbage\r\n\r\n".to_vec())], 2);
    let e = Loader::new().load(&remote(&server.uri, Some(Digest::of(&module())), 1, 2000)).unwrap_err();
    let SourceError::Fetch { attempts, .. } = &e else { panic!("{e}") };
    assert_eq!(*attempts, 2, "{e}");
}

#[test]
fn a_module_over_the_size_limit_is_refused() {
    let server = serve(vec![Reply::Body(vec![7; 4096])], 1);
    let e = Loader::new().with_max_bytes(100).load(&remote(&server.uri, Some(Digest::of(&module())), 2, 5000)).unwrap_err();
    assert!(e.to_string().ends_with("the module is larger than the limit of 100 bytes"), "{e}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn https_speaks_tls_and_says_so_when_the_server_does_not() {
    let server = serve(vec![Reply::Status(400)], 1);
    let uri = server.uri.replace("http://", "https://");
    let e = Loader::new().load(&remote(&uri, Some(Digest::of(&module())), 0, 2000)).unwrap_err();
    let SourceError::Fetch { reason, .. } = &e else { panic!("{e}") };
    assert!(!reason.contains("answered HTTP"), "the plain HTTP answer must not be taken for TLS: {e}");
    let e = Loader::new().load(&remote("ftp://example.invalid/x", Some(Digest::of(&module())), 0, 100)).unwrap_err();
    assert!(e.to_string().ends_with("only http:// and https:// URIs can be fetched"), "{e}");
}

#[test]
fn a_tampered_cache_file_is_refused_by_name_without_touching_the_network() {
    let cache = temp_dir("tampered");
    let expected = Digest::of(&module());
    let file = cache.join(format!("{expected}.wasm"));
    std::fs::write(&file, b"\0asm\x01\0\0\0evil").unwrap();
    // Port 9 (discard) on loopback: nothing answers there, and nothing should be asked.
    let e = Loader::new().with_cache_dir(&cache).load(&remote("http://127.0.0.1:9/x.wasm", Some(expected), 0, 100)).unwrap_err();
    let SourceError::CacheTampered { path, .. } = &e else { panic!("{e}") };
    assert_eq!(path, &file);
    assert!(e.to_string().starts_with(&format!("download cache file {} does not hold what its name says", file.display())), "{e}");
}

#[test]
fn local_and_inline_code_is_checked_when_a_sha256_is_given() {
    let dir = temp_dir("local");
    let path = dir.join("p.wasm");
    std::fs::write(&path, module()).unwrap();
    let ok = Loader::new().load(&CodeSpec { sha256: Some(Digest::of(&module())), ..CodeSpec::file(&path) }).unwrap();
    assert_eq!(ok.origin, path.display().to_string());
    let wrong = Digest([0; 32]);
    let e = Loader::new().load(&CodeSpec { sha256: Some(wrong), ..CodeSpec::file(&path) }).unwrap_err();
    assert!(e.to_string().starts_with(&format!("{} does not have the expected sha256: expected {wrong}, got ", path.display())), "{e}");
    let e = Loader::new()
        .load(&CodeSpec { source: Source::Inline(b"x".to_vec()), sha256: Some(wrong), signature: None })
        .unwrap_err();
    assert!(e.to_string().starts_with("inline code does not have the expected sha256"), "{e}");
    let e = Loader::new().load(&CodeSpec::file(dir.join("missing.wasm"))).unwrap_err();
    assert!(e.to_string().starts_with(&format!("cannot read {}: ", dir.join("missing.wasm").display())), "{e}");
}

#[test]
fn bad_sha256_values_say_why() {
    assert_eq!(
        Digest::parse("abc").unwrap_err().to_string(),
        "sha256 \"abc\" is not a SHA-256: it has 3 characters, a SHA-256 has 64 hexadecimal digits"
    );
    let e = Digest::parse(&format!("{}xy", "0".repeat(62))).unwrap_err();
    assert!(e.to_string().ends_with("\"xy\" at offset 62 is not hexadecimal"), "{e}");
    let d = Digest::of(b"x");
    assert_eq!(Digest::parse(&d.hex().to_uppercase()).unwrap(), d);
}

#[test]
fn a_signature_check_passes_signed_code_and_refuses_the_rest() {
    let dir = temp_dir("signed");
    let key = SecretKey::generate().unwrap();
    let signed = signature::sign_embedded(&module(), &key).unwrap();
    let check = |detached: Option<PathBuf>| Some(SignatureCheck { public_key: key.public_key(), detached });
    let inline = |bytes: Vec<u8>, detached| CodeSpec { source: Source::Inline(bytes), sha256: None, signature: check(detached) };
    assert!(Loader::new().load(&inline(signed.clone(), None)).is_ok());
    let e = Loader::new().load(&inline(module(), None)).unwrap_err();
    assert_eq!(e.to_string(), "inline code: signature check failed: the module is not signed: it has no `signature` custom section");
    let sig = dir.join("p.wasm.sig");
    std::fs::write(&sig, signature::sign_detached(&module(), &key).unwrap()).unwrap();
    assert!(Loader::new().load(&inline(module(), Some(sig.clone()))).is_ok());
    // A truncated detached signature names the file.
    let bytes = std::fs::read(&sig).unwrap();
    std::fs::write(&sig, &bytes[..bytes.len() - 1]).unwrap();
    let e = Loader::new().load(&inline(module(), Some(sig.clone()))).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("inline code (detached signature {}): signature check failed: the signature is truncated", sig.display())),
        "{e}"
    );
}

#[test]
fn backoff_doubles_up_to_the_maximum() {
    let p = RetryPolicy { num_retries: 5, base_interval: Duration::from_millis(100), max_interval: Duration::from_millis(350) };
    let waits: Vec<u128> = (0..4).map(|a| p.backoff(a).as_millis()).collect();
    assert_eq!(waits, [100, 200, 350, 350]);
    assert_eq!(RetryPolicy::default().backoff(40), Duration::from_secs(10));
}
