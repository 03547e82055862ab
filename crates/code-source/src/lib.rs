//! Where a plugin's code comes from, and the checks it passes before a host compiles it.
//!
//! A [`CodeSpec`] names a [`Source`] (a local file, inline bytes, or a remote URI as Envoy's
//! `AsyncDataSource` has them), an expected SHA-256 (required for a remote source, optional
//! otherwise) and optionally an Ed25519 [`signature`] check. [`Loader::load`] fetches the bytes
//! and runs every check; bytes that fail one are never returned, so a host never compiles them.
//!
//! Remote sources ([`Remote`], the `remote` feature: ureq with rustls, so `https://` uses the
//! Mozilla roots of `webpki-roots`) are fetched with a timeout per attempt and a [`RetryPolicy`],
//! and kept in an on-disk cache keyed by their SHA-256 ([`Loader::with_cache_dir`]): a cached
//! file is read back only if its content still has that hash.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

#[cfg(feature = "remote")]
mod remote;
pub mod signature;

pub use signature::{PublicKey, SecretKey, SignatureError};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// A digest from 64 hexadecimal digits (either case).
    pub fn parse(text: &str) -> Result<Self, SourceError> {
        let bad = |reason: String| SourceError::BadSha256 { value: text.to_string(), reason };
        if text.len() != 64 {
            return Err(bad(format!("it has {} characters, a SHA-256 has 64 hexadecimal digits", text.len())));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = text.get(2 * i..2 * i + 2).ok_or_else(|| bad("it is not ASCII".into()))?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad(format!("{pair:?} at offset {} is not hexadecimal", 2 * i)))?;
        }
        Ok(Digest(out))
    }

    /// Lowercase hexadecimal.
    pub fn hex(&self) -> String {
        signature::hex(&self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.hex())
    }
}

/// When and how often a failed remote fetch is tried again: Envoy's `RetryPolicy` of a remote
/// data source (`num_retries`, `retry_back_off`), with its defaults: one retry, a base interval
/// of 1 s, a maximum of ten times the base. The wait doubles after each failed attempt, up to
/// the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub num_retries: u32,
    /// The wait before the first retry.
    pub base_interval: Duration,
    /// The longest wait between attempts.
    pub max_interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { num_retries: 1, base_interval: Duration::from_secs(1), max_interval: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (0 for the first).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base_interval.saturating_mul(factor).min(self.max_interval)
    }
}

/// A remote source: Envoy's `RemoteDataSource` (`http_uri.uri`, `http_uri.timeout`,
/// `retry_policy`; its `sha256` is [`CodeSpec::sha256`], required here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// An `http://` or `https://` URI.
    pub uri: String,
    /// The longest one attempt may take, connection and body included.
    pub timeout: Duration,
    /// Retries after a failed attempt (a connection error, a time-out, an HTTP 5xx or 429).
    pub retry: RetryPolicy,
}

/// Where the module's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file (Envoy's `local.filename`).
    File(PathBuf),
    /// The bytes themselves (Envoy's `local.inline_bytes` or `local.inline_string`).
    Inline(Vec<u8>),
    /// A URI, fetched.
    Remote(Remote),
}

/// What to load and the checks its bytes must pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeSpec {
    /// Where the bytes are.
    pub source: Source,
    /// The SHA-256 the bytes must have; required for [`Source::Remote`].
    pub sha256: Option<Digest>,
    /// An Ed25519 signature the module must carry, if any.
    pub signature: Option<SignatureCheck>,
}

impl CodeSpec {
    /// The bytes of a file, unchecked.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        CodeSpec { source: Source::File(path.into()), sha256: None, signature: None }
    }
}

/// A signature check: the module must be signed by the holder of `public_key`, in its own
/// `signature` section or in the `detached` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The key that must have signed it.
    pub public_key: PublicKey,
    /// A detached signature file (else the signature is embedded in the module).
    pub detached: Option<PathBuf>,
}

/// Why code was not loaded. Each message names the file, URI or key at fault.
#[derive(Debug)]
pub enum SourceError {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// A SHA-256 in the configuration is not 64 hexadecimal digits.
    BadSha256 {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A remote source without the SHA-256 it requires.
    MissingSha256 {
        /// The URI.
        uri: String,
    },
    /// The bytes do not have the expected SHA-256.
    HashMismatch {
        /// Where they came from (a file, a URI, `inline code`).
        origin: String,
        /// The SHA-256 the configuration expects.
        expected: Digest,
        /// The SHA-256 of the bytes.
        actual: Digest,
    },
    /// A file of the download cache does not have the SHA-256 its name says.
    CacheTampered {
        /// The cache file.
        path: PathBuf,
        /// The SHA-256 its name says it has.
        expected: Digest,
        /// The SHA-256 of its content.
        actual: Digest,
    },
    /// A remote fetch failed on every attempt.
    Fetch {
        /// The URI.
        uri: String,
        /// How many attempts were made.
        attempts: u32,
        /// Why the last one failed.
        reason: String,
    },
    /// This build cannot fetch remote code (without the `remote` feature).
    NoRemote {
        /// The URI.
        uri: String,
    },
    /// The signature check failed.
    Signature {
        /// What was checked: the module's origin, and the detached file if any.
        origin: String,
        /// What did not hold.
        error: SignatureError,
    },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            SourceError::BadSha256 { value, reason } => write!(f, "sha256 {value:?} is not a SHA-256: {reason}"),
            SourceError::MissingSha256 { uri } => {
                write!(f, "remote code {uri} has no sha256: a remote source must name the SHA-256 its bytes must have")
            }
            SourceError::HashMismatch { origin, expected, actual } => write!(
                f,
                "{origin} does not have the expected sha256: expected {expected}, got {actual}; refusing it"
            ),
            SourceError::CacheTampered { path, expected, actual } => write!(
                f,
                "download cache file {} does not hold what its name says (sha256 {expected}, its content has {actual}): it was changed or corrupted; delete it to fetch the code again",
                path.display()
            ),
            SourceError::Fetch { uri, attempts, reason } => {
                let tries = if *attempts == 1 { "1 attempt".to_string() } else { format!("{attempts} attempts") };
                write!(f, "cannot fetch {uri} ({tries}): {reason}")
            }
            SourceError::NoRemote { uri } => write!(f, "cannot fetch {uri}: this build has no remote sources"),
            SourceError::Signature { origin, error } => write!(f, "{origin}: signature check failed: {error}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// Code that passed its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The module's bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256.
    pub sha256: Digest,
    /// Where they came from, as messages name it.
    pub origin: String,
    /// For a remote source: whether the bytes came from the download cache.
    pub from_cache: bool,
    /// For a remote source: the attempts made (0 when served from the cache).
    pub attempts: u32,
}

/// Loads code: reads, fetches (through the download cache) and checks it.
#[derive(Clone, Debug, Default)]
pub struct Loader {
    cache_dir: Option<PathBuf>,
    max_bytes: Option<u64>,
}

/// The largest remote module fetched unless [`Loader::with_max_bytes`] says otherwise: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

impl Loader {
    /// A loader without a download cache.
    pub fn new() -> Self {
        Loader::default()
    }

    /// Keeps remote code in `dir`, one file per SHA-256 (`<sha256>.wasm`), written once and read
    /// back only when its content still has that hash. Anyone who can write `dir` can make
    /// loads fail (a changed file is refused) but cannot make a module with another hash pass.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Refuses remote code larger than `max` bytes (default [`DEFAULT_MAX_BYTES`]).
    pub fn with_max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = Some(max);
        self
    }

    /// The download cache directory, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// The bytes `spec` names, once they passed every check: the SHA-256 (when given, and
    /// always for remote code), then the signature (when asked for).
    pub fn load(&self, spec: &CodeSpec) -> Result<Loaded, SourceError> {
        let (bytes, origin, from_cache, attempts) = match &spec.source {
            Source::File(path) => {
                let bytes = std::fs::read(path).map_err(|error| SourceError::Io { path: path.clone(), error })?;
                (bytes, path.display().to_string(), false, 0)
            }
            Source::Inline(bytes) => (bytes.clone(), "inline code".to_string(), false, 0),
            Source::Remote(remote) => {
                let expected = spec.sha256.ok_or_else(|| SourceError::MissingSha256 { uri: remote.uri.clone() })?;
                let (bytes, from_cache, attempts) = self.fetch(remote, expected)?;
                (bytes, remote.uri.clone(), from_cache, attempts)
            }
        };
        let sha256 = Digest::of(&bytes);
        if let Some(expected) = spec.sha256 {
            if expected != sha256 {
                return Err(SourceError::HashMismatch { origin, expected, actual: sha256 });
            }
        }
        if let Some(check) = &spec.signature {
            let detached = match &check.detached {
                Some(path) => Some(std::fs::read(path).map_err(|error| SourceError::Io { path: path.clone(), error })?),
                None => None,
            };
            let what = match &check.detached {
                Some(path) => format!("{origin} (detached signature {})", path.display()),
                None => origin.clone(),
            };
            signature::verify(&bytes, detached.as_deref(), &check.public_key)
                .map_err(|error| SourceError::Signature { origin: what, error })?;
        }
        Ok(Loaded { bytes, sha256, origin, from_cache, attempts })
    }

    /// The bytes of `remote`: from the cache when it holds them, else fetched (and cached when
    /// their hash is `expected`).
    fn fetch(&self, remote: &Remote, expected: Digest) -> Result<(Vec<u8>, bool, u32), SourceError> {
        if let Some(path) = self.cache_file(expected) {
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let actual = Digest::of(&bytes);
                    if actual != expected {
                        return Err(SourceError::CacheTampered { path, expected, actual });
                    }
                    return Ok((bytes, true, 0));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(SourceError::Io { path, error }),
            }
        }
        let (bytes, attempts) = self.fetch_remote(remote)?;
        if Digest::of(&bytes) == expected {
            self.store(expected, &bytes)?;
        }
        Ok((bytes, false, attempts))
    }

    fn cache_file(&self, sha256: Digest) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|dir| dir.join(format!("{sha256}.wasm")))
    }

    /// Writes a verified module to the cache: a temporary file renamed into place, so a reader
    /// never sees half a file.
    fn store(&self, sha256: Digest, bytes: &[u8]) -> Result<(), SourceError> {
        let (Some(dir), Some(path)) = (&self.cache_dir, self.cache_file(sha256)) else { return Ok(()) };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| SourceError::Io { path, error }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let tmp = dir.join(format!(".{sha256}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    #[cfg(feature = "remote")]
    fn fetch_remote(&self, remote: &Remote) -> Result<(Vec<u8>, u32), SourceError> {
        remote::fetch(remote, self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES))
    }

    #[cfg(not(feature = "remote"))]
    fn fetch_remote(&self, remote: &Remote) -> Result<(Vec<u8>, u32), SourceError> {
        Err(SourceError::NoRemote { uri: remote.uri.clone() })
    }
}

/// Reads a public key file (64 hexadecimal digits); the error names the file.
pub fn read_public_key(path: &Path) -> Result<PublicKey, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|error| SourceError::Io { path: path.to_path_buf(), error })?;
    PublicKey::from_hex(&text).map_err(|error| SourceError::Signature { origin: format!("public key {}", path.display()), error })
}

/// Reads a secret key file (64 hexadecimal digits); the error names the file.
pub fn read_secret_key(path: &Path) -> Result<SecretKey, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|error| SourceError::Io { path: path.to_path_buf(), error })?;
    SecretKey::from_hex(&text).map_err(|error| SourceError::Signature { origin: format!("secret key {}", path.display()), error })
}

#[cfg(test)]
mod tests;
