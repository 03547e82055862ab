//! Ed25519 signatures over a Wasm module, embedded in a custom section or detached.
//!
//! # Format
//!
//! The layout of the WebAssembly tool conventions for module signatures (`Signatures.md`), as
//! proxy-wasm-cpp-host's verifier reads it (`src/signature_util.cc`), restricted to one hash
//! and one signature:
//!
//! ```text
//! payload      := 0x01 (spec version) 0x01 (content: a module) 0x01 (hash: SHA-256)
//!                 varuint32(1)                       signed-hash count
//!                 varuint32(len(signed_hash)) signed_hash
//! signed_hash  := varuint32(1) hash[32]              hash count, the SHA-256 below
//!                 varuint32(1)                       signature count
//!                 varuint32(len(signature)) signature
//! signature    := varuint32(len(key_id)) key_id      a key id (this host writes none)
//!                 0x01                               the algorithm: Ed25519
//!                 varuint32(64) ed25519_signature[64]
//! ```
//!
//! The Ed25519 signature is over the message `"wasmsig" || 0x01 || 0x01 || 0x01 || hash`
//! (domain separation, then the three format bytes, then the hash).
//!
//! - **Embedded**: the payload is the content of a custom section named `signature` that is the
//!   module's first section; `hash` is the SHA-256 of every byte after that section (the rest
//!   of the module's sections). Signing an already signed module replaces its signature.
//! - **Detached**: the payload alone, in a file of its own; `hash` is the SHA-256 of the
//!   module's bytes after its 8-byte header (all its sections, a signature section included).
//!
//! # Keys
//!
//! A key file holds 64 hexadecimal digits (surrounding whitespace ignored): the 32-byte Ed25519
//! public key (`.pub`), or the 32-byte secret seed (`.key`) that `pwhost keygen` writes with
//! mode 0600.

use std::fmt;

use ed25519_dalek::{Signer, Verifier};
use sha2::{Digest as _, Sha256};

/// The name of the custom section that carries an embedded signature.
pub const SECTION_NAME: &str = "signature";

const SPEC_VERSION: u8 = 0x01;
const CONTENT_MODULE: u8 = 0x01;
const HASH_SHA256: u8 = 0x01;
const ALGORITHM_ED25519: u8 = 0x01;
const DOMAIN: &[u8] = b"wasmsig";
const WASM_HEADER: &[u8] = b"\0asm\x01\0\0\0";

/// Why a module's signature does not check out, or cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The bytes are not a Wasm binary module (no `\0asm` version-1 header).
    NotWasm,
    /// The module has no embedded signature (and no detached one was given).
    Missing,
    /// A `signature` custom section exists but is not the module's first section.
    NotFirst,
    /// The module's section structure is cut short or inconsistent.
    Malformed(&'static str),
    /// The signature payload ends early: this field is missing.
    Truncated(&'static str),
    /// A field holds a value this host does not support (only version 1, a module, SHA-256, one
    /// hash, one Ed25519 signature of 64 bytes).
    Unsupported {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The payload has bytes after the signature.
    TrailingBytes,
    /// The module changed after it was signed: the hash in the signature is not the module's.
    HashMismatch {
        /// The hash the signature carries, in hex.
        signed: String,
        /// The hash of the module as it is, in hex.
        actual: String,
    },
    /// The signature does not verify with the given public key.
    BadSignature,
    /// A key is not 64 hexadecimal digits, or not a valid Ed25519 key.
    BadKey(String),
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::NotWasm => f.write_str("not a Wasm binary module (no \\0asm version 1 header)"),
            SignatureError::Missing => write!(f, "the module is not signed: it has no `{SECTION_NAME}` custom section"),
            SignatureError::NotFirst => {
                write!(f, "the module's `{SECTION_NAME}` custom section is not its first section, where it must be")
            }
            SignatureError::Malformed(why) => write!(f, "the module is malformed: {why}"),
            SignatureError::Truncated(field) => write!(f, "the signature is truncated: it ends before its {field}"),
            SignatureError::Unsupported { field, value } => {
                write!(f, "the signature's {field} is {value}, which this host does not support")
            }
            SignatureError::TrailingBytes => f.write_str("the signature has bytes after its end"),
            SignatureError::HashMismatch { signed, actual } => write!(
                f,
                "the module changed after it was signed: the signature covers sha256 {signed}, the module's is {actual}"
            ),
            SignatureError::BadSignature => f.write_str("the signature does not verify with the public key"),
            SignatureError::BadKey(why) => write!(f, "bad key: {why}"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// An Ed25519 public key that verifies module signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

/// An Ed25519 secret key that signs modules.
pub struct SecretKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

fn hex32(text: &str) -> Result<[u8; 32], SignatureError> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(SignatureError::BadKey(format!("expected 64 hexadecimal digits, found {} characters", text.len())));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = text.get(2 * i..2 * i + 2).ok_or_else(|| SignatureError::BadKey("not ASCII".into()))?;
        *byte = u8::from_str_radix(pair, 16)
            .map_err(|_| SignatureError::BadKey(format!("{pair:?} at offset {} is not hexadecimal", 2 * i)))?;
    }
    Ok(out)
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl PublicKey {
    /// The key in 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Result<Self, SignatureError> {
        let bytes = hex32(text)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| SignatureError::BadKey("not a valid Ed25519 public key".into()))
    }

    /// The key as 64 hexadecimal digits.
    pub fn to_hex(&self) -> String {
        hex(self.0.as_bytes())
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, SignatureError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| SignatureError::BadKey(format!("no randomness for a new key: {e}")))?;
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The key from its 32-byte seed in 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Result<Self, SignatureError> {
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&hex32(text)?)))
    }

    /// The seed as 64 hexadecimal digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0.to_bytes())
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

/// A signature payload, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The SHA-256 the signature covers.
    pub hash: [u8; 32],
    /// The key id, if the signer wrote one.
    pub key_id: Vec<u8>,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
}

/// Reads an unsigned LEB128 `u32` at `*at`.
fn varuint(bytes: &[u8], at: &mut usize, field: &'static str) -> Result<u32, SignatureError> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at).ok_or(SignatureError::Truncated(field))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(value).map_err(|_| SignatureError::Unsupported { field, value });
        }
    }
    Err(SignatureError::Unsupported { field, value })
}

fn take<'a>(bytes: &'a [u8], at: &mut usize, len: usize, field: &'static str) -> Result<&'a [u8], SignatureError> {
    let end = at.checked_add(len).ok_or(SignatureError::Truncated(field))?;
    let out = bytes.get(*at..end).ok_or(SignatureError::Truncated(field))?;
    *at = end;
    Ok(out)
}

fn expect_byte(bytes: &[u8], at: &mut usize, field: &'static str, wanted: u8) -> Result<(), SignatureError> {
    let b = take(bytes, at, 1, field)?[0];
    if b != wanted {
        return Err(SignatureError::Unsupported { field, value: u64::from(b) });
    }
    Ok(())
}

fn expect_count(bytes: &[u8], at: &mut usize, field: &'static str, wanted: u32) -> Result<(), SignatureError> {
    let n = varuint(bytes, at, field)?;
    if n != wanted {
        return Err(SignatureError::Unsupported { field, value: u64::from(n) });
    }
    Ok(())
}

/// Parses a signature payload (the section's content, or a detached signature file).
pub fn parse_payload(bytes: &[u8]) -> Result<Payload, SignatureError> {
    let at = &mut 0;
    expect_byte(bytes, at, "spec version", SPEC_VERSION)?;
    expect_byte(bytes, at, "content type", CONTENT_MODULE)?;
    expect_byte(bytes, at, "hash function", HASH_SHA256)?;
    expect_count(bytes, at, "signed-hash count", 1)?;
    let signed_len = varuint(bytes, at, "signed-hash length")? as usize;
    let signed = take(bytes, at, signed_len, "signed hash")?;
    if *at != bytes.len() {
        return Err(SignatureError::TrailingBytes);
    }
    let at = &mut 0;
    expect_count(signed, at, "hash count", 1)?;
    let hash: [u8; 32] = take(signed, at, 32, "hash")?.try_into().map_err(|_| SignatureError::Truncated("hash"))?;
    expect_count(signed, at, "signature count", 1)?;
    let entry_len = varuint(signed, at, "signature length")? as usize;
    let entry = take(signed, at, entry_len, "signature entry")?;
    if *at != signed.len() {
        return Err(SignatureError::TrailingBytes);
    }
    let at = &mut 0;
    let key_id_len = varuint(entry, at, "key id length")? as usize;
    let key_id = take(entry, at, key_id_len, "key id")?.to_vec();
    expect_byte(entry, at, "signature algorithm", ALGORITHM_ED25519)?;
    expect_count(entry, at, "signature size", 64)?;
    let signature: [u8; 64] =
        take(entry, at, 64, "signature bytes")?.try_into().map_err(|_| SignatureError::Truncated("signature bytes"))?;
    if *at != entry.len() {
        return Err(SignatureError::TrailingBytes);
    }
    Ok(Payload { hash, key_id, signature })
}

fn push_varuint(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn with_len(out: &mut Vec<u8>, part: &[u8]) {
    push_varuint(out, part.len() as u32);
    out.extend_from_slice(part);
}

fn message(hash: &[u8; 32]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(&[SPEC_VERSION, CONTENT_MODULE, HASH_SHA256]);
    m.extend_from_slice(hash);
    m
}

fn payload(hash: [u8; 32], key: &SecretKey) -> Vec<u8> {
    let signature = key.0.sign(&message(&hash)).to_bytes();
    let mut entry = Vec::new();
    push_varuint(&mut entry, 0); // no key id
    entry.push(ALGORITHM_ED25519);
    with_len(&mut entry, &signature);
    let mut signed = Vec::new();
    push_varuint(&mut signed, 1);
    signed.extend_from_slice(&hash);
    push_varuint(&mut signed, 1);
    with_len(&mut signed, &entry);
    let mut out = vec![SPEC_VERSION, CONTENT_MODULE, HASH_SHA256];
    push_varuint(&mut out, 1);
    with_len(&mut out, &signed);
    out
}

/// A module split around its embedded signature: the payload, if its first section is the
/// signature section, and the sections the signature covers.
struct Split<'a> {
    payload: Option<&'a [u8]>,
    covered: &'a [u8],
}

/// Splits `module` into its signature payload (a first section that is a custom section named
/// `signature`) and the sections after it; checks the header and that no later section is a
/// signature section.
fn split(module: &[u8]) -> Result<Split<'_>, SignatureError> {
    let body = module.strip_prefix(WASM_HEADER).ok_or(SignatureError::NotWasm)?;
    let mut at = 0;
    let mut first: Option<&[u8]> = None;
    let mut covered_from = 0;
    let mut index = 0;
    while at < body.len() {
        let id = body[at];
        at += 1;
        let size = varuint(body, &mut at, "section size").map_err(|_| SignatureError::Malformed("a section size is cut short"))?
            as usize;
        let content = take(body, &mut at, size, "section").map_err(|_| SignatureError::Malformed("a section runs past the end"))?;
        if id == 0 {
            let name_at = &mut 0;
            let name_len = varuint(content, name_at, "name")
                .map_err(|_| SignatureError::Malformed("a custom section's name is cut short"))? as usize;
            let name = take(content, name_at, name_len, "name")
                .map_err(|_| SignatureError::Malformed("a custom section's name runs past the section"))?;
            if name == SECTION_NAME.as_bytes() {
                if index != 0 {
                    return Err(SignatureError::NotFirst);
                }
                first = Some(&content[*name_at..]);
                covered_from = at;
            }
        }
        index += 1;
    }
    Ok(Split { payload: first, covered: &body[covered_from..] })
}

/// `module` with an embedded signature by `key` (replacing the one it had, if any).
pub fn sign_embedded(module: &[u8], key: &SecretKey) -> Result<Vec<u8>, SignatureError> {
    let parts = split(module)?;
    let hash: [u8; 32] = Sha256::digest(parts.covered).into();
    let mut section = Vec::new();
    with_len(&mut section, SECTION_NAME.as_bytes());
    section.extend_from_slice(&payload(hash, key));
    let mut out = WASM_HEADER.to_vec();
    out.push(0);
    with_len(&mut out, &section);
    out.extend_from_slice(parts.covered);
    Ok(out)
}

/// A detached signature of `module` by `key`: the payload alone, for a file beside the module.
pub fn sign_detached(module: &[u8], key: &SecretKey) -> Result<Vec<u8>, SignatureError> {
    let body = module.strip_prefix(WASM_HEADER).ok_or(SignatureError::NotWasm)?;
    split(module)?;
    Ok(payload(Sha256::digest(body).into(), key))
}

/// Checks `module`'s signature with `key`: the `detached` payload when given (over the whole
/// module), else the embedded one. Every failure says what did not hold.
pub fn verify(module: &[u8], detached: Option<&[u8]>, key: &PublicKey) -> Result<Payload, SignatureError> {
    let (payload, covered) = match detached {
        Some(d) => {
            split(module)?;
            (d, module.strip_prefix(WASM_HEADER).ok_or(SignatureError::NotWasm)?)
        }
        None => {
            let parts = split(module)?;
            (parts.payload.ok_or(SignatureError::Missing)?, parts.covered)
        }
    };
    let parsed = parse_payload(payload)?;
    let actual: [u8; 32] = Sha256::digest(covered).into();
    if actual != parsed.hash {
        return Err(SignatureError::HashMismatch { signed: hex(&parsed.hash), actual: hex(&actual) });
    }
    let signature = ed25519_dalek::Signature::from_bytes(&parsed.signature);
    key.0.verify(&message(&parsed.hash), &signature).map_err(|_| SignatureError::BadSignature)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal module: one type section and one custom section.
    fn module() -> Vec<u8> {
        let mut m = WASM_HEADER.to_vec();
        m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // type section: one () -> ()
        m.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']); // custom section "note"
        m
    }

    fn key(n: u8) -> SecretKey {
        SecretKey::from_hex(&hex(&[n; 32])).unwrap()
    }

    #[test]
    fn an_embedded_signature_verifies_and_sits_first() {
        let signed = sign_embedded(&module(), &key(1)).unwrap();
        assert_eq!(&signed[8..9], &[0], "a custom section first");
        assert!(signed.ends_with(&module()[8..]), "the sections follow unchanged");
        let payload = verify(&signed, None, &key(1).public_key()).unwrap();
        assert!(payload.key_id.is_empty());
        assert_eq!(payload.hash, <[u8; 32]>::from(Sha256::digest(&module()[8..])));
        // Signing again replaces the signature rather than stacking one.
        let again = sign_embedded(&signed, &key(2)).unwrap();
        assert_eq!(again.len(), signed.len());
        assert!(verify(&again, None, &key(2).public_key()).is_ok());
        assert_eq!(verify(&again, None, &key(1).public_key()), Err(SignatureError::BadSignature));
    }

    #[test]
    fn a_detached_signature_verifies_over_the_whole_module() {
        let sig = sign_detached(&module(), &key(3)).unwrap();
        assert!(verify(&module(), Some(&sig), &key(3).public_key()).is_ok());
        assert_eq!(verify(&module(), None, &key(3).public_key()), Err(SignatureError::Missing));
        assert_eq!(verify(&module(), Some(&sig), &key(4).public_key()), Err(SignatureError::BadSignature));
    }

    #[test]
    fn a_changed_module_is_refused_with_both_hashes() {
        let mut signed = sign_embedded(&module(), &key(1)).unwrap();
        *signed.last_mut().unwrap() ^= 1;
        let e = verify(&signed, None, &key(1).public_key()).unwrap_err();
        let SignatureError::HashMismatch { signed: s, actual } = &e else { panic!("{e}") };
        assert_ne!(s, actual);
        assert!(e.to_string().contains(&format!("covers sha256 {s}, the module's is {actual}")), "{e}");
    }

    #[test]
    fn a_forged_hash_with_the_old_signature_is_refused() {
        // An attacker changes the module and puts its new hash in the payload: the Ed25519
        // signature no longer matches the message.
        let signed = sign_embedded(&module(), &key(1)).unwrap();
        let mut changed = module();
        *changed.last_mut().unwrap() ^= 1;
        let mut forged = signed[..signed.len() - (module().len() - 8)].to_vec();
        let hash: [u8; 32] = Sha256::digest(&changed[8..]).into();
        let at = forged.windows(32).position(|w| w == <[u8; 32]>::from(Sha256::digest(&module()[8..]))).unwrap();
        forged[at..at + 32].copy_from_slice(&hash);
        forged.extend_from_slice(&changed[8..]);
        assert_eq!(verify(&forged, None, &key(1).public_key()), Err(SignatureError::BadSignature));
    }

    #[test]
    fn every_truncation_of_a_signature_is_an_error_not_a_panic() {
        let sig = sign_detached(&module(), &key(3)).unwrap();
        for n in 0..sig.len() {
            let e = verify(&module(), Some(&sig[..n]), &key(3).public_key()).unwrap_err();
            assert!(matches!(e, SignatureError::Truncated(_) | SignatureError::Unsupported { .. }), "{n}: {e}");
        }
        let e = parse_payload(&sig[..sig.len() - 10]).unwrap_err();
        assert!(e.to_string().starts_with("the signature is truncated: it ends before its"), "{e}");
        let signed = sign_embedded(&module(), &key(1)).unwrap();
        for n in 8..signed.len() {
            assert!(verify(&signed[..n], None, &key(1).public_key()).is_err(), "{n}");
        }
    }

    #[test]
    fn a_signature_section_that_is_not_first_or_not_wasm_is_refused() {
        let signed = sign_embedded(&module(), &key(1)).unwrap();
        let mut late = module();
        late.extend_from_slice(&signed[8..]);
        assert_eq!(verify(&late, None, &key(1).public_key()), Err(SignatureError::NotFirst));
        assert_eq!(verify(b"(module)", None, &key(1).public_key()), Err(SignatureError::NotWasm));
        assert_eq!(sign_detached(b"\0asm", &key(1)).unwrap_err(), SignatureError::NotWasm);
    }

    #[test]
    fn keys_round_trip_and_bad_keys_say_why() {
        let k = SecretKey::generate().unwrap();
        let again = SecretKey::from_hex(&format!("  {}\n", k.to_hex())).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        assert_eq!(PublicKey::from_hex(&k.public_key().to_hex()).unwrap(), k.public_key());
        let e = PublicKey::from_hex("abcd").unwrap_err();
        assert_eq!(e.to_string(), "bad key: expected 64 hexadecimal digits, found 4 characters");
        let e = PublicKey::from_hex(&"zz".repeat(32)).unwrap_err();
        assert!(e.to_string().contains("\"zz\" at offset 0 is not hexadecimal"), "{e}");
    }
}
