//! [`PrecompiledCache`]: compiled modules on disk, for engines that can serialize them, so that
//! a restart skips compilation.
//!
//! # The trust rule
//!
//! [`Engine::deserialize`] is an `unsafe fn`: it runs its bytes as machine code without
//! validating them, so bytes that did not come from the same engine's [`Module::serialize`]
//! can do anything the host process can. This cache is the one place in the host that calls it,
//! and it only does so for a file that:
//!
//! 1. lies in a directory owned by the user the process runs as and writable by no one else
//!    (no group or world write bit), checked when the cache is opened: so only this user can
//!    have put the file there;
//! 2. is a regular file (not a symbolic link), owned by that user, writable by no one else,
//!    checked again before each read;
//! 3. carries the engine's name and version and the module's SHA-256 that this load expects
//!    (the file name says them and the header repeats them), and the SHA-256 of the serialized
//!    bytes that follow, which must match: a file that was changed, truncated or corrupted is
//!    refused with an error naming it, never run.
//!
//! The checksum is no signature: it catches corruption and careless edits, while (1) and (2)
//! keep out everyone but the process's own user, who could run any code anyway. Files are
//! written with mode 0600 into a temporary name and renamed into place, so a reader never sees
//! half a file. An entry that is missing is compiled and written; an entry that fails a check is
//! an error ([`Error::Cache`]) and is left for a person to look at: delete it to recompile.
//!
//! The key is the engine's [`name`](Engine::name), its [`version`](Engine::version) (which
//! engine crates make change with anything that changes their compiled code: the engine
//! library's version, their own, their configuration) and the SHA-256 of the module's bytes. An
//! engine that gives no version, or cannot serialize, is not cached.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::{Engine, Error, Module};

/// The first bytes of a cache file.
const MAGIC: &[u8] = b"proxy-wasm-host precompiled module 1\n";

/// A directory of precompiled modules. Its trust rule (the docs of this module, `cache.rs`): a
/// file is run only from a directory and as a file that this user owns and no one else can
/// write, with the engine, version and hashes this load expects.
#[derive(Clone, Debug)]
pub struct PrecompiledCache {
    dir: PathBuf,
    /// The user id of this process, learnt from a file it made (Unix).
    owner: Option<u32>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cache_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Cache { path: path.display().to_string(), reason: reason.into() }
}

impl PrecompiledCache {
    /// Opens (and creates, with mode 0700) the cache directory `dir`. Refused when the
    /// directory is owned by another user or writable by its group or by everyone, or cannot
    /// be written.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        let io = |what: &str, e: std::io::Error| cache_error(&dir, format!("cannot {what}: {e}"));
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(&dir).map_err(|e| io("create the directory", e))?;
        }
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| io("read the directory", e))?;
        if !meta.is_dir() {
            return Err(cache_error(&dir, "it is not a directory (a symbolic link is refused too)"));
        }
        // Learn this process's user id from a file it makes: the standard library has no call
        // for it, and this needs no `unsafe`.
        let probe = dir.join(format!(".probe-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|e| io("write in the directory", e))?;
        let probe_meta = std::fs::metadata(&probe);
        let _ = std::fs::remove_file(&probe);
        let probe_meta = probe_meta.map_err(|e| io("read a file it wrote", e))?;
        let cache = PrecompiledCache { dir, owner: owner_of(&probe_meta) };
        cache.check_trusted(&meta, "the cache directory")?;
        Ok(cache)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `engine`'s compiled form of the module with this SHA-256, or `None`
    /// when the engine is not cached (it cannot serialize or gives no version).
    pub fn entry_path(&self, engine: &dyn Engine, module_sha256: &[u8; 32]) -> Option<PathBuf> {
        let version = engine.version();
        if !engine.capabilities().precompiled || version.is_empty() {
            return None;
        }
        let version_hash = hex(&Sha256::digest(version.as_bytes())[..8]);
        Some(self.dir.join(format!("{}-{version_hash}-{}.cwasm", engine.name(), hex(module_sha256))))
    }

    #[cfg(unix)]
    fn check_trusted(&self, meta: &std::fs::Metadata, what: &str) -> Result<(), Error> {
        use std::os::unix::fs::MetadataExt;
        let path = &self.dir;
        if let Some(owner) = self.owner {
            if meta.uid() != owner {
                return Err(cache_error(path, format!("{what} is owned by user {}, not by this process's user {owner}", meta.uid())));
            }
        }
        if meta.mode() & 0o022 != 0 {
            return Err(cache_error(
                path,
                format!("{what} is writable by its group or by everyone (mode {:o}); only its owner may write it", meta.mode() & 0o777),
            ));
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn check_trusted(&self, _meta: &std::fs::Metadata, _what: &str) -> Result<(), Error> {
        Ok(())
    }

    /// The header a file of this entry carries (a blank line then separates it from the
    /// payload).
    fn header(engine: &dyn Engine, module_sha256: &[u8; 32], payload: &[u8]) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(format!("engine {}\n", engine.name()).as_bytes());
        h.extend_from_slice(format!("version {}\n", engine.version().replace('\n', " ")).as_bytes());
        h.extend_from_slice(format!("module {}\n", hex(module_sha256)).as_bytes());
        h.extend_from_slice(format!("payload {}\n", hex(&Sha256::digest(payload))).as_bytes());
        h
    }

    /// The compiled module for (engine, module hash), if the cache has a trusted entry;
    /// `Ok(None)` when it has none. A file that fails a check is an error naming it.
    pub(crate) fn load(&self, engine: &dyn Engine, module_sha256: &[u8; 32]) -> Result<Option<Arc<dyn Module>>, Error> {
        let Some(path) = self.entry_path(engine, module_sha256) else { return Ok(None) };
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cache_error(&path, format!("cannot read it: {e}"))),
        };
        if !meta.is_file() {
            return Err(cache_error(&path, "it is not a regular file (a symbolic link is refused)"));
        }
        self.check_trusted(&meta, "the file").map_err(|e| match e {
            Error::Cache { reason, .. } => cache_error(&path, reason),
            other => other,
        })?;
        let bytes = std::fs::read(&path).map_err(|e| cache_error(&path, format!("cannot read it: {e}")))?;
        let payload = Self::verified_payload(&bytes, engine, module_sha256).map_err(|reason| cache_error(&path, reason))?;
        // SAFETY: the trust rule of this module (see its docs) holds for `payload`: the file lies
        // in a directory only this process's user can write, is a regular file owned by that
        // user and writable by no one else, and its header names this engine, this engine's
        // version and this module, with a checksum the payload matches; so the payload is the
        // output of `Module::serialize` of this engine that this cache wrote, which is what
        // `Engine::deserialize` requires.
        let module = unsafe { engine.deserialize(payload) }.map_err(|e| cache_error(&path, format!("the engine refused it: {e}")))?;
        Ok(Some(module))
    }

    /// The serialized module in `bytes`, once its header matches (engine, version, module) and
    /// its checksum holds; else why not.
    fn verified_payload<'a>(bytes: &'a [u8], engine: &dyn Engine, module_sha256: &[u8; 32]) -> Result<&'a [u8], String> {
        let rest = bytes.strip_prefix(MAGIC).ok_or("it is not a precompiled-module file of this host (wrong magic)")?;
        let end = rest.windows(2).position(|w| w == b"\n\n").ok_or("its header is cut short")?;
        let (header, payload) = (&rest[..end + 1], &rest[end + 2..]);
        let expected = Self::header(engine, module_sha256, payload);
        if &expected[MAGIC.len()..] == header {
            return Ok(payload);
        }
        let text = String::from_utf8_lossy(header);
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("?").trim().to_string();
        let version = engine.version();
        Err(if field("engine ") != engine.name() || field("version ") != version.replace('\n', " ") {
            format!("it was made by {} {}, not {} {version}", field("engine "), field("version "), engine.name())
        } else if field("module ") != hex(module_sha256) {
            format!("it holds module {}, not {}", field("module "), hex(module_sha256))
        } else {
            format!(
                "its content does not match its checksum (sha256 {} recorded, {} found): it was changed or corrupted",
                field("payload "),
                hex(&Sha256::digest(payload))
            )
        })
    }

    /// Writes the compiled module for (engine, module hash), if the engine serializes it.
    pub(crate) fn store(&self, engine: &dyn Engine, module_sha256: &[u8; 32], module: &dyn Module) -> Result<(), Error> {
        let (Some(path), Some(payload)) = (self.entry_path(engine, module_sha256), module.serialize()) else { return Ok(()) };
        let tmp = self.dir.join(format!(".{}.{}.tmp", hex(&module_sha256[..8]), std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            file.write_all(&Self::header(engine, module_sha256, &payload))?;
            file.write_all(b"\n")?;
            file.write_all(&payload)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            cache_error(&path, format!("cannot write it: {e}"))
        })
    }
}

#[cfg(unix)]
fn owner_of(meta: &std::fs::Metadata) -> Option<u32> {
    Some(std::os::unix::fs::MetadataExt::uid(meta))
}

#[cfg(not(unix))]
fn owner_of(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::{Capabilities, DefaultEmbedder, Export, ExternKind, Import, Instance, PluginHost, VmHost};

    /// An engine whose "compiled code" is the module bytes themselves; it counts compilations
    /// and deserializations, and refuses to deserialize anything but its own format.
    struct Echo {
        version: &'static str,
        compiled: AtomicU32,
        deserialized: AtomicU32,
    }

    struct EchoModule(Vec<u8>, Vec<Export>);

    impl Module for EchoModule {
        fn imports(&self) -> &[Import] {
            &[]
        }
        fn exports(&self) -> &[Export] {
            &self.1
        }
        fn instantiate(&self, _host: VmHost) -> Result<Box<dyn Instance>, Error> {
            Err(Error::Unsupported { engine: "echo", what: "instances" })
        }
        fn serialize(&self) -> Option<Vec<u8>> {
            Some([b"ECHO".as_slice(), &self.0].concat())
        }
    }

    fn module(bytes: &[u8]) -> Arc<dyn Module> {
        let func = |params: Vec<&'static str>, results: Vec<&'static str>| ExternKind::Func { params, results };
        let exports = vec![
            Export { name: "proxy_abi_version_0_2_1".into(), kind: func(vec![], vec![]) },
            Export { name: "malloc".into(), kind: func(vec!["i32"], vec!["i32"]) },
        ];
        Arc::new(EchoModule(bytes.to_vec(), exports))
    }

    impl Engine for Echo {
        fn name(&self) -> &'static str {
            "echo"
        }
        fn version(&self) -> String {
            self.version.to_string()
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities { precompiled: true, sandboxed: true, ..Default::default() }
        }
        fn compile(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
            self.compiled.fetch_add(1, Ordering::SeqCst);
            Ok(module(bytes))
        }
        unsafe fn deserialize(&self, bytes: &[u8]) -> Result<Arc<dyn Module>, Error> {
            self.deserialized.fetch_add(1, Ordering::SeqCst);
            let inner = bytes.strip_prefix(b"ECHO").ok_or(Error::Compile { engine: "echo", message: "not ours".into() })?;
            Ok(module(inner))
        }
    }

    fn echo(version: &'static str) -> Arc<Echo> {
        Arc::new(Echo { version, compiled: AtomicU32::new(0), deserialized: AtomicU32::new(0) })
    }

    const WASM: &[u8] = b"\0asm\x01\0\0\0";

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pw-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn host(engine: &Arc<Echo>, cache: &PrecompiledCache) -> PluginHost {
        PluginHost::new(engine.clone(), Arc::new(DefaultEmbedder)).with_precompiled_cache(cache.clone())
    }

    #[test]
    fn a_second_process_loads_what_the_first_compiled() {
        let d = dir("hit");
        let cache = PrecompiledCache::open(&d).unwrap();
        let engine = echo("1.0");
        host(&engine, &cache).load(WASM).unwrap();
        assert_eq!((engine.compiled.load(Ordering::SeqCst), engine.deserialized.load(Ordering::SeqCst)), (1, 0));
        let path = cache.entry_path(&*engine, &Sha256::digest(WASM).into()).unwrap();
        assert!(path.is_file());
        #[cfg(unix)]
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions()) & 0o777, 0o600);
        // A fresh host (a restart): no compilation.
        host(&engine, &cache).load(WASM).unwrap();
        assert_eq!((engine.compiled.load(Ordering::SeqCst), engine.deserialized.load(Ordering::SeqCst)), (1, 1));
        // Another version of the engine has its own entry.
        let newer = echo("2.0");
        host(&newer, &cache).load(WASM).unwrap();
        assert_eq!(newer.compiled.load(Ordering::SeqCst), 1);
        assert_ne!(cache.entry_path(&*newer, &Sha256::digest(WASM).into()), Some(path));
    }

    #[test]
    fn a_tampered_file_is_refused_by_name_and_never_deserialized() {
        let d = dir("tampered");
        let cache = PrecompiledCache::open(&d).unwrap();
        let engine = echo("1.0");
        host(&engine, &cache).load(WASM).unwrap();
        let path = cache.entry_path(&*engine, &Sha256::digest(WASM).into()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let e = host(&engine, &cache).load(WASM).err().unwrap();
        let text = e.to_string();
        assert!(text.starts_with(&format!("precompiled-module cache {}: its content does not match its checksum", path.display())), "{text}");
        assert_eq!(engine.deserialized.load(Ordering::SeqCst), 0);
        // A truncated header, and another engine's header under this name.
        std::fs::write(&path, &bytes[..MAGIC.len() + 3]).unwrap();
        assert!(host(&engine, &cache).load(WASM).err().unwrap().to_string().contains("its header is cut short"));
        let other = PrecompiledCache::header(&*echo("0.9"), &Sha256::digest(WASM).into(), b"ECHO");
        std::fs::write(&path, [other, b"\nECHO".to_vec()].concat()).unwrap();
        let text = host(&engine, &cache).load(WASM).err().unwrap().to_string();
        assert!(text.contains("it was made by echo 0.9, not echo 1.0"), "{text}");
        assert_eq!(engine.deserialized.load(Ordering::SeqCst), 0);
    }

    #[cfg(unix)]
    #[test]
    fn directories_and_files_others_can_write_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("open");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = PrecompiledCache::open(&d).unwrap_err().to_string();
        assert!(e.contains("the cache directory is writable by its group or by everyone (mode 777)"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        let cache = PrecompiledCache::open(&d).unwrap();
        let engine = echo("1.0");
        host(&engine, &cache).load(WASM).unwrap();
        let path = cache.entry_path(&*engine, &Sha256::digest(WASM).into()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = host(&engine, &cache).load(WASM).err().unwrap().to_string();
        assert!(e.contains("the file is writable by its group or by everyone (mode 666)"), "{e}");
        // A symbolic link in place of an entry.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        let e = host(&engine, &cache).load(WASM).err().unwrap().to_string();
        assert!(e.contains("it is not a regular file"), "{e}");
        assert_eq!(engine.deserialized.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_engine_without_a_version_is_not_cached() {
        let d = dir("noversion");
        let cache = PrecompiledCache::open(&d).unwrap();
        let engine = echo("");
        host(&engine, &cache).load(WASM).unwrap();
        host(&engine, &cache).load(WASM).unwrap();
        assert_eq!(engine.compiled.load(Ordering::SeqCst), 2);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    }
}
