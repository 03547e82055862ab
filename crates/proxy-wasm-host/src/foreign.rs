//! Envoy's built-in foreign functions that need no proxy: `compress`, `uncompress` and
//! `verify_signature`, registered in every [`Services`] ([`Services::new`]). Their arguments and
//! results are encoded as Envoy's (`source/extensions/common/wasm/foreign.cc`), so plugins
//! written for Envoy call them unchanged; the work is done by well-kept crates (flate2, rsa,
//! ed25519-dalek, prost).
//!
//! The proxy-specific ones (`declare_property`, `set_envoy_filter_state`, `clear_route_cache`)
//! act on the proxy's own state, so an embedder registers them; the scripted embedder records
//! them as effects.

use std::io::Read as _;
use std::sync::Arc;

use abi::Status;
use prost::Message as _;

use crate::{ForeignCx, Services};

/// The most bytes `uncompress` produces: more is refused (SERIALIZATION_FAILURE) instead of
/// growing without bound. Envoy keeps doubling its buffer until zlib succeeds, so a small
/// compressed bomb can exhaust the proxy's memory there; here it cannot.
pub const MAX_UNCOMPRESSED: u64 = 64 << 20;

/// Registers `compress`, `uncompress` and `verify_signature` in `services`.
pub fn register_builtins(services: &Services) {
    services.register_foreign_function("compress", Arc::new(|_: &ForeignCx<'_>, args: &[u8]| compress(args)));
    services.register_foreign_function("uncompress", Arc::new(|_: &ForeignCx<'_>, args: &[u8]| uncompress(args)));
    services.register_foreign_function("verify_signature", Arc::new(|_: &ForeignCx<'_>, args: &[u8]| verify_signature(args)));
}

/// `compress`: the arguments compressed in the zlib format (RFC 1950) at zlib's default level,
/// as zlib's `compress()` does for Envoy.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, Status> {
    let mut encoder = flate2::read::ZlibEncoder::new(data, flate2::Compression::default());
    let mut out = Vec::new();
    encoder.read_to_end(&mut out).map_err(|_| Status::SerializationFailure)?;
    Ok(out)
}

/// `uncompress`: zlib-format data decompressed; SERIALIZATION_FAILURE for data that is not
/// zlib, is cut short, or decompresses to more than [`MAX_UNCOMPRESSED`] bytes.
pub fn uncompress(data: &[u8]) -> Result<Vec<u8>, Status> {
    let mut decoder = flate2::read::ZlibDecoder::new(data).take(MAX_UNCOMPRESSED + 1);
    let mut out = Vec::new();
    decoder.read_to_end(&mut out).map_err(|_| Status::SerializationFailure)?;
    if out.len() as u64 > MAX_UNCOMPRESSED {
        return Err(Status::SerializationFailure);
    }
    Ok(out)
}

/// `verify_signature`'s arguments, Envoy's `VerifySignatureArguments` message
/// (`source/extensions/common/wasm/ext/verify_signature.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifySignatureArguments {
    /// The hash function: `sha1`, `sha224`, `sha256`, `sha384` or `sha512`.
    #[prost(string, tag = "1")]
    pub hash_function: String,
    /// The public key, DER (SubjectPublicKeyInfo); exclusive with `public_key_pem`.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    /// The signature.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    /// The signed data.
    #[prost(bytes = "vec", tag = "4")]
    pub text: Vec<u8>,
    /// The public key, PEM; exclusive with `public_key`.
    #[prost(string, tag = "5")]
    pub public_key_pem: String,
}

/// `verify_signature`'s result, Envoy's `VerifySignatureResult` message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifySignatureResult {
    /// Whether the signature is valid.
    #[prost(bool, tag = "1")]
    pub result: bool,
    /// Why not, when it is not.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// A public key `verify_signature` takes.
enum PublicKey {
    Rsa(Box<rsa::RsaPublicKey>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// The key in `args`: exactly one of DER and PEM, RSA or Ed25519; `None` otherwise (Envoy:
    /// BAD_ARGUMENT).
    fn of(args: &VerifySignatureArguments) -> Option<PublicKey> {
        // One trait (the `pkcs8` crate's) decodes both kinds of key.
        use ed25519_dalek::pkcs8::DecodePublicKey as _;
        match (args.public_key.is_empty(), args.public_key_pem.is_empty()) {
            (false, true) => rsa::RsaPublicKey::from_public_key_der(&args.public_key)
                .map(|k| PublicKey::Rsa(Box::new(k)))
                .ok()
                .or_else(|| ed25519_dalek::VerifyingKey::from_public_key_der(&args.public_key).ok().map(PublicKey::Ed25519)),
            (true, false) => rsa::RsaPublicKey::from_public_key_pem(&args.public_key_pem)
                .map(|k| PublicKey::Rsa(Box::new(k)))
                .ok()
                .or_else(|| ed25519_dalek::VerifyingKey::from_public_key_pem(&args.public_key_pem).ok().map(PublicKey::Ed25519)),
            _ => None,
        }
    }

    /// Verifies `signature` over `text`: RSA keys with PKCS #1 v1.5 and `hash` (as OpenSSL's
    /// default for RSA in Envoy), Ed25519 keys over the text itself (Ed25519 hashes internally;
    /// `hash` must still be a known name).
    fn verify(&self, hash: &str, signature: &[u8], text: &[u8]) -> Result<(), String> {
        use sha2::Digest as _;
        match self {
            PublicKey::Rsa(key) => {
                let (scheme, digest) = match hash {
                    "sha1" => (rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), sha1::Sha1::digest(text).to_vec()),
                    "sha224" => (rsa::Pkcs1v15Sign::new::<sha2::Sha224>(), sha2::Sha224::digest(text).to_vec()),
                    "sha256" => (rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), sha2::Sha256::digest(text).to_vec()),
                    "sha384" => (rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), sha2::Sha384::digest(text).to_vec()),
                    "sha512" => (rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), sha2::Sha512::digest(text).to_vec()),
                    other => return Err(format!("unknown hash function `{other}`")),
                };
                key.verify(scheme, &digest, signature).map_err(|e| format!("failed to verify the signature: {e}"))
            }
            PublicKey::Ed25519(key) => {
                if !matches!(hash, "sha1" | "sha224" | "sha256" | "sha384" | "sha512") {
                    return Err(format!("unknown hash function `{hash}`"));
                }
                let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|e| format!("not an Ed25519 signature: {e}"))?;
                key.verify_strict(text, &signature).map_err(|e| format!("failed to verify the signature: {e}"))
            }
        }
    }
}

/// `verify_signature`: the arguments are a [`VerifySignatureArguments`] message, the result a
/// [`VerifySignatureResult`] (`result` false and an `error` for a signature that does not
/// verify or an unknown hash). BAD_ARGUMENT when the arguments do not parse or carry no usable
/// key (none, both DER and PEM, or neither RSA nor Ed25519), as Envoy.
pub fn verify_signature(args: &[u8]) -> Result<Vec<u8>, Status> {
    let args = VerifySignatureArguments::decode(args).map_err(|_| Status::BadArgument)?;
    let key = PublicKey::of(&args).ok_or(Status::BadArgument)?;
    let result = match key.verify(&args.hash_function, &args.signature, &args.text) {
        Ok(()) => VerifySignatureResult { result: true, error: String::new() },
        Err(error) => VerifySignatureResult { result: false, error },
    };
    Ok(result.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_and_uncompress_round_trip_as_zlib() {
        let data = b"hello hello hello hello hello".repeat(20);
        let packed = compress(&data).unwrap();
        assert!(packed.len() < data.len());
        assert_eq!(packed[0], 0x78, "a zlib header (deflate, 32 KiB window)");
        assert_eq!(uncompress(&packed).unwrap(), data);
        assert_eq!(uncompress(&compress(b"").unwrap()).unwrap(), b"");
        assert_eq!(uncompress(b"not zlib"), Err(Status::SerializationFailure));
        assert_eq!(uncompress(&packed[..packed.len() - 3]), Err(Status::SerializationFailure), "cut short");
    }

    #[test]
    fn uncompress_refuses_a_bomb() {
        // 65 MiB of zeros compresses to about 65 KiB.
        let bomb = compress(&vec![0u8; (MAX_UNCOMPRESSED + 1024 * 1024) as usize]).unwrap();
        assert!(bomb.len() < 1 << 20);
        assert_eq!(uncompress(&bomb), Err(Status::SerializationFailure));
    }

    fn verify(args: VerifySignatureArguments) -> Result<VerifySignatureResult, Status> {
        verify_signature(&args.encode_to_vec()).map(|r| VerifySignatureResult::decode(&*r).unwrap())
    }

    #[test]
    fn verify_signature_checks_ed25519_and_rsa_signatures() {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        use ed25519_dalek::Signer as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let der = signing.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec();
        let text = b"the signed text".to_vec();
        let signature = signing.sign(&text).to_bytes().to_vec();
        let args = |sig: &[u8], text: &[u8]| VerifySignatureArguments {
            hash_function: "sha256".into(),
            public_key: der.clone(),
            signature: sig.to_vec(),
            text: text.to_vec(),
            public_key_pem: String::new(),
        };
        assert_eq!(verify(args(&signature, &text)), Ok(VerifySignatureResult { result: true, error: String::new() }));
        let tampered = verify(args(&signature, b"other text")).unwrap();
        assert!(!tampered.result && tampered.error.contains("failed to verify"), "{tampered:?}");
        let unknown = verify(VerifySignatureArguments { hash_function: "md5".into(), ..args(&signature, &text) }).unwrap();
        assert!(!unknown.result && unknown.error.contains("unknown hash function `md5`"), "{unknown:?}");

        // RSA with PKCS #1 v1.5, the key as PEM.
        use rsa::traits::PublicKeyParts as _;
        let private = rsa::RsaPrivateKey::new(&mut rand_core_rng(), 1024).unwrap();
        let public = private.to_public_key();
        assert!(public.size() >= 128);
        let pem = public.to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        use sha2::Digest as _;
        let rsa_signature = private.sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &sha2::Sha256::digest(&text)).unwrap();
        let rsa_args = VerifySignatureArguments {
            hash_function: "sha256".into(),
            public_key: Vec::new(),
            signature: rsa_signature.clone(),
            text: text.clone(),
            public_key_pem: pem.clone(),
        };
        assert!(verify(rsa_args.clone()).unwrap().result);
        assert!(!verify(VerifySignatureArguments { hash_function: "sha512".into(), ..rsa_args.clone() }).unwrap().result);

        // No key, both keys, a key that is neither, arguments that do not parse: BAD_ARGUMENT.
        assert_eq!(verify(VerifySignatureArguments { public_key: Vec::new(), ..args(&signature, &text) }), Err(Status::BadArgument));
        assert_eq!(verify(VerifySignatureArguments { public_key: der.clone(), ..rsa_args }), Err(Status::BadArgument));
        assert_eq!(verify(VerifySignatureArguments { public_key: b"junk".to_vec(), ..args(&signature, &text) }), Err(Status::BadArgument));
        assert_eq!(verify_signature(b"\xff\xff\xff"), Err(Status::BadArgument));
    }

    /// A deterministic random source for key generation in tests.
    fn rand_core_rng() -> impl rsa::rand_core::CryptoRngCore {
        struct Fixed(u64);
        impl rsa::rand_core::RngCore for Fixed {
            fn next_u32(&mut self) -> u32 {
                self.next_u64() as u32
            }
            fn next_u64(&mut self) -> u64 {
                // SplitMix64.
                self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                for chunk in dest.chunks_mut(8) {
                    chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
                }
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
                self.fill_bytes(dest);
                Ok(())
            }
        }
        impl rsa::rand_core::CryptoRng for Fixed {}
        Fixed(42)
    }
}
