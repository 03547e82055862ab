//! WASI preview1, as the C++ host answers it (imported from `wasi_snapshot_preview1` or
//! `wasi_unstable`): every function proxy-wasm-cpp-host links (`include/proxy-wasm/exports.h`
//! `FOR_ALL_WASI_FUNCTIONS`), with the answers of its `src/exports.cc` `wasi_unstable_*`
//! functions, so that a module that starts in Envoy (a Go `wasip1` runtime, an Emscripten or
//! wasi-libc start-up) starts here.
//!
//! WASI is wasm32 only: an iovec is 8 bytes (pointer `u32`, length `u32`) and every pointer the
//! host writes is a `u32`. Every function answers a WASI [`Errno`], never a Proxy-Wasm status:
//! any pointer or length outside guest memory is [`Errno::Fault`]. Standard output and error go
//! to the plugin's log, one message per write; only fds 1 and 2 exist; there is no file system
//! and no socket, and the environment is the plugin's configured one, never the host's.
//!
//! Where the reference writes a result slot before answering an error (`fd_readdir`,
//! `path_readlink`, `sock_*`), so do we: a bad slot is [`Errno::Fault`] instead of the error.

use abi::{ClockId, Errno, LogLevel, Status};

use crate::{HostCx, HostResult, Trap};

/// Bytes in a wasm32 iovec: pointer `u32`, length `u32`.
const IOVEC_SIZE: u64 = 8;

/// The most bytes one log message from `fd_write` holds; a longer write is logged in pieces of
/// this size (the C++ host logs any size as one message: a bound we keep on purpose).
const MAX_MESSAGE: usize = 64 * 1024;

/// The most bytes one `random_get` fills, as in the C++ host
/// (`PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES`).
const MAX_RANDOM: u64 = 64 * 1024;

/// Bytes in a WASI `fdstat`.
const FDSTAT_SIZE: usize = 24;
/// WASI `rights::fd_write`.
const RIGHT_FD_WRITE: u64 = 1 << 6;

/// A memory fault as WASI reports it.
fn fault(_: Status) -> Errno {
    Errno::Fault
}

/// A little-endian `u32` at `at` in `bytes`, which the caller has sized.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// What the reference's stubs that report a size do: a `u32` 0 at `return_size`
/// ([`Errno::Fault`] if it cannot be written), then `errno`.
fn nothing_then(cx: &mut dyn HostCx, return_size: u64, errno: Errno) -> HostResult {
    let (mut mem, _) = cx.parts();
    mem.write_u32(return_size, 0).map_err(fault)?;
    Err(errno.into())
}

/// Whether `fd` is standard output or error, the only fds the reference knows.
fn is_std_out_or_err(fd: u32) -> bool {
    fd == 1 || fd == 2
}

/// [`Errno::Badf`] unless `fd` is 1 or 2.
fn std_out_or_err(fd: u32) -> HostResult {
    if is_std_out_or_err(fd) {
        Ok(())
    } else {
        Err(Errno::Badf.into())
    }
}

/// Tells the embedder (at TRACE, as Envoy's `Context::error` logs it) that the plugin called a
/// WASI function the host only pretends to serve.
fn note_ignored(cx: &mut dyn HostCx, what: &str) {
    let host = cx.host();
    let plugin = host.plugin().cloned();
    host.embedder.log(plugin.as_deref(), LogLevel::Trace, &format!("wasi {what}: ignored, as Envoy does"));
}

/// Splits one write into log messages: one trailing `\n` removed, then pieces of at most
/// [`MAX_MESSAGE`] bytes; an empty write gives none, a lone `\n` one empty message.
fn messages(data: &[u8], emit: &mut dyn FnMut(&[u8])) {
    if data.is_empty() {
        return;
    }
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    if data.is_empty() {
        emit(data);
        return;
    }
    for piece in data.chunks(MAX_MESSAGE) {
        emit(piece);
    }
}

/// The writev of `fd_write` and `fd_pwrite` (`exports.cc` `writevImpl`): fd 1 (stdout) goes to
/// the plugin log at INFO, fd 2 (stderr) at ERROR, everything the iovecs name as one message
/// with one trailing newline removed ([`messages`]); other fds are [`Errno::Badf`]. An iovec of
/// length 0 is skipped whatever its pointer. Writes the number of bytes taken at
/// `return_written`; iovecs adding up to more than `u32::MAX` bytes are [`Errno::Inval`]. Every
/// iovec and the return pointer are checked before anything is logged (the reference checks the
/// return pointer after logging).
fn write_iovecs(cx: &mut dyn HostCx, fd: u32, iovs_ptr: u64, iovs_len: u64, return_written: u64) -> HostResult {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Err(Errno::Badf.into()),
    };
    let (mut mem, host) = cx.parts();
    let table_len = iovs_len.checked_mul(IOVEC_SIZE).ok_or(Errno::Fault)?;
    let table = mem.read(iovs_ptr, table_len).map_err(fault)?;
    mem.check(return_written, 4).map_err(fault)?;
    // Check every iovec before logging anything, so a fault leaves no effect.
    let mut total: u64 = 0;
    for iov in table.chunks_exact(IOVEC_SIZE as usize) {
        let (ptr, len) = (u64::from(u32_at(iov, 0)), u64::from(u32_at(iov, 4)));
        if len > 0 {
            mem.check(ptr, len).map_err(fault)?;
        }
        total = total.checked_add(len).ok_or(Errno::Inval)?;
    }
    let written = u32::try_from(total).map_err(|_| Errno::Inval)?;
    let mut data = Vec::with_capacity(written as usize);
    for iov in table.chunks_exact(IOVEC_SIZE as usize) {
        let len = u64::from(u32_at(iov, 4));
        if len > 0 {
            data.extend_from_slice(mem.read(u64::from(u32_at(iov, 0)), len).map_err(fault)?);
        }
    }
    let plugin = host.plugin().cloned();
    let embedder = host.embedder.clone();
    messages(&data, &mut |m| embedder.log(plugin.as_deref(), level, &String::from_utf8_lossy(m)));
    mem.write_u32(return_written, written).map_err(fault)?;
    Ok(())
}

/// `fd_write`: see [`write_iovecs`] (`exports.cc` `wasi_unstable_fd_write`).
pub fn fd_write(cx: &mut dyn HostCx, fd: u32, iovs_ptr: u64, iovs_len: u64, return_written: u64) -> HostResult {
    write_iovecs(cx, fd, iovs_ptr, iovs_len, return_written)
}

/// `fd_pwrite`: as `fd_write`, the offset ignored (`exports.cc` `wasi_unstable_fd_pwrite`).
pub fn fd_pwrite(
    cx: &mut dyn HostCx,
    fd: u32,
    iovs_ptr: u64,
    iovs_len: u64,
    _offset: u64,
    return_written: u64,
) -> HostResult {
    write_iovecs(cx, fd, iovs_ptr, iovs_len, return_written)
}

/// `fd_read`: nothing can be read; [`Errno::Nosys`].
pub fn fd_read(_cx: &mut dyn HostCx, _fd: u32, _iovs_ptr: u64, _iovs_len: u64, _return_read: u64) -> HostResult {
    Err(Errno::Nosys.into())
}

/// `fd_pread`: nothing can be read; [`Errno::Nosys`] (`exports.cc` `wasi_unstable_fd_pread`).
pub fn fd_pread(
    _cx: &mut dyn HostCx,
    _fd: u32,
    _iovs_ptr: u64,
    _iovs_len: u64,
    _offset: u64,
    _return_read: u64,
) -> HostResult {
    Err(Errno::Nosys.into())
}

/// `fd_seek`: [`Errno::Success`] for any fd, the new offset left unwritten, and a TRACE note to
/// the embedder (`exports.cc` `wasi_unstable_fd_seek`; wasi-libc's stdio start-up seeks and
/// must not fail).
pub fn fd_seek(cx: &mut dyn HostCx, fd: u32, _offset: i64, _whence: u32, _return_offset: u64) -> HostResult {
    note_ignored(cx, &format!("fd_seek(fd={fd})"));
    Ok(())
}

/// `fd_close`: [`Errno::Success`] for any fd, and a TRACE note to the embedder (`exports.cc`
/// `wasi_unstable_fd_close`).
pub fn fd_close(cx: &mut dyn HostCx, fd: u32) -> HostResult {
    note_ignored(cx, &format!("fd_close(fd={fd})"));
    Ok(())
}

/// `fd_fdstat_get`: fds 1 and 2 are described as the C++ host describes them (`exports.cc`
/// `wasi_unstable_fd_fdstat_get`): filetype 0 (unknown), flags 0, `rights_base` FD_WRITE (64),
/// `rights_inheriting` 0; other fds are [`Errno::Badf`]. A stat pointer outside memory is
/// [`Errno::Fault`] (the reference ignores the failed write and answers success: a deviation we
/// keep, since nothing was written).
pub fn fd_fdstat_get(cx: &mut dyn HostCx, fd: u32, return_stat: u64) -> HostResult {
    std_out_or_err(fd)?;
    // filetype u8 at 0, flags u16 at 2, rights_base u64 at 8, rights_inheriting u64 at 16.
    let mut stat = [0u8; FDSTAT_SIZE];
    stat[8..16].copy_from_slice(&RIGHT_FD_WRITE.to_le_bytes());
    let (mut mem, _) = cx.parts();
    mem.write(return_stat, &stat).map_err(fault)?;
    Ok(())
}

/// `fd_fdstat_set_flags`: [`Errno::Nosys`] (`exports.cc`: no flag has an effect).
pub fn fd_fdstat_set_flags(_cx: &mut dyn HostCx, _fd: u32, _flags: u32) -> HostResult {
    Err(Errno::Nosys.into())
}

/// `fd_fdstat_set_rights`: [`Errno::Success`] for fds 1 and 2 (nothing changes), else
/// [`Errno::Badf`] (`exports.cc`).
pub fn fd_fdstat_set_rights(_cx: &mut dyn HostCx, fd: u32, _rights_base: u64, _rights_inheriting: u64) -> HostResult {
    std_out_or_err(fd)
}

/// `fd_prestat_get`: there are no preopened directories; [`Errno::Badf`].
pub fn fd_prestat_get(_cx: &mut dyn HostCx, _fd: u32, _return_prestat: u64) -> HostResult {
    Err(Errno::Badf.into())
}

/// `fd_prestat_dir_name`: there are no preopened directories; [`Errno::Nosys`], as the C++
/// host answers.
pub fn fd_prestat_dir_name(_cx: &mut dyn HostCx, _fd: u32, _path_ptr: u64, _path_len: u64) -> HostResult {
    Err(Errno::Nosys.into())
}

/// `fd_filestat_get`: no fd is a file; [`Errno::Badf`].
pub fn fd_filestat_get(_cx: &mut dyn HostCx, _fd: u32, _return_stat: u64) -> HostResult {
    Err(Errno::Badf.into())
}

/// `fd_filestat_set_size`: [`Errno::Success`] for fds 1 and 2 (nothing changes), else
/// [`Errno::Badf`] (`exports.cc`).
pub fn fd_filestat_set_size(_cx: &mut dyn HostCx, fd: u32, _size: u64) -> HostResult {
    std_out_or_err(fd)
}

/// `fd_filestat_set_times`: [`Errno::Success`] for fds 1 and 2, else [`Errno::Badf`]
/// (`exports.cc`).
pub fn fd_filestat_set_times(_cx: &mut dyn HostCx, fd: u32, _atim: u64, _mtim: u64, _fst_flags: u32) -> HostResult {
    std_out_or_err(fd)
}

/// `fd_advise`: [`Errno::Success`] for any fd (advice only; `exports.cc`).
pub fn fd_advise(_cx: &mut dyn HostCx, _fd: u32, _offset: u64, _len: u64, _advice: u32) -> HostResult {
    Ok(())
}

/// `fd_allocate`: [`Errno::Success`] for fds 1 and 2, else [`Errno::Badf`] (`exports.cc`).
pub fn fd_allocate(_cx: &mut dyn HostCx, fd: u32, _offset: u64, _len: u64) -> HostResult {
    std_out_or_err(fd)
}

/// `fd_datasync`: [`Errno::Success`] for fds 1 and 2, else [`Errno::Badf`] (`exports.cc`).
pub fn fd_datasync(_cx: &mut dyn HostCx, fd: u32) -> HostResult {
    std_out_or_err(fd)
}

/// `fd_sync`: [`Errno::Success`] for fds 1 and 2, else [`Errno::Badf`] (`exports.cc`).
pub fn fd_sync(_cx: &mut dyn HostCx, fd: u32) -> HostResult {
    std_out_or_err(fd)
}

/// `fd_readdir`: no fd is a directory: writes 0 at `return_size` ([`Errno::Fault`] if it cannot),
/// then [`Errno::Notdir`] (`exports.cc` `wasi_unstable_fd_readdir`).
pub fn fd_readdir(
    cx: &mut dyn HostCx,
    _fd: u32,
    _buf_ptr: u64,
    _buf_len: u64,
    _cookie: u64,
    return_size: u64,
) -> HostResult {
    nothing_then(cx, return_size, Errno::Notdir)
}

/// `fd_renumber`: [`Errno::Notsup`] when both fds are 1 or 2, else [`Errno::Badf`]
/// (`exports.cc`).
pub fn fd_renumber(_cx: &mut dyn HostCx, fd: u32, to: u32) -> HostResult {
    std_out_or_err(fd)?;
    std_out_or_err(to)?;
    Err(Errno::Notsup.into())
}

/// `fd_tell`: fds 1 and 2 are at offset 0 (a `u64` written at `return_offset`,
/// [`Errno::Fault`] if it cannot be); other fds are [`Errno::Badf`] (`exports.cc`).
pub fn fd_tell(cx: &mut dyn HostCx, fd: u32, return_offset: u64) -> HostResult {
    std_out_or_err(fd)?;
    let (mut mem, _) = cx.parts();
    mem.write_u64(return_offset, 0).map_err(fault)?;
    Ok(())
}

/// `path_open`: there is no file system; [`Errno::Noent`].
#[allow(clippy::too_many_arguments)]
pub fn path_open(
    _cx: &mut dyn HostCx,
    _fd: u32,
    _dirflags: u32,
    _path_ptr: u64,
    _path_len: u64,
    _oflags: u32,
    _rights_base: u64,
    _rights_inheriting: u64,
    _fdflags: u32,
    _return_fd: u64,
) -> HostResult {
    Err(Errno::Noent.into())
}

/// `path_filestat_get`: there is no file system; [`Errno::Notsup`], as the C++ host answers.
pub fn path_filestat_get(
    _cx: &mut dyn HostCx,
    _fd: u32,
    _flags: u32,
    _path_ptr: u64,
    _path_len: u64,
    _return_stat: u64,
) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `path_filestat_set_times`: no file system; [`Errno::Notsup`] (`exports.cc`).
#[allow(clippy::too_many_arguments)]
pub fn path_filestat_set_times(
    _cx: &mut dyn HostCx,
    _fd: u32,
    _flags: u32,
    _path_ptr: u64,
    _path_len: u64,
    _atim: u64,
    _mtim: u64,
    _fst_flags: u32,
) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `path_create_directory`: no file system; [`Errno::Notsup`] (`exports.cc`).
pub fn path_create_directory(_cx: &mut dyn HostCx, _fd: u32, _path_ptr: u64, _path_len: u64) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `path_remove_directory`: no file system; [`Errno::Notsup`] (`exports.cc`).
pub fn path_remove_directory(_cx: &mut dyn HostCx, _fd: u32, _path_ptr: u64, _path_len: u64) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `path_unlink_file`: no file system; [`Errno::Notsup`] (`exports.cc`).
pub fn path_unlink_file(_cx: &mut dyn HostCx, _fd: u32, _path_ptr: u64, _path_len: u64) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `path_link`: no file system; [`Errno::Notsup`] (`exports.cc`). Linked with WASI's seven
/// parameters; the C++ host declares six, so a WASI toolchain's import of it loads here and not
/// in Envoy with V8 (a documented deviation).
#[allow(clippy::too_many_arguments)]
pub fn path_link(
    _cx: &mut dyn HostCx,
    _old_fd: u32,
    _old_flags: u32,
    _old_path_ptr: u64,
    _old_path_len: u64,
    _new_fd: u32,
    _new_path_ptr: u64,
    _new_path_len: u64,
) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `path_readlink`: no file system: writes 0 at `return_size` ([`Errno::Fault`] if it cannot),
/// then [`Errno::Notsup`] (`exports.cc`).
pub fn path_readlink(
    cx: &mut dyn HostCx,
    _fd: u32,
    _path_ptr: u64,
    _path_len: u64,
    _buf_ptr: u64,
    _buf_len: u64,
    return_size: u64,
) -> HostResult {
    nothing_then(cx, return_size, Errno::Notsup)
}

/// `path_rename`: no file system; [`Errno::Notsup`] (`exports.cc`).
pub fn path_rename(
    _cx: &mut dyn HostCx,
    _fd: u32,
    _old_path_ptr: u64,
    _old_path_len: u64,
    _new_fd: u32,
    _new_path_ptr: u64,
    _new_path_len: u64,
) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `path_symlink`: no file system; [`Errno::Notsup`] (`exports.cc`). Linked with WASI's five
/// parameters (the C++ host declares four; see `path_link`).
pub fn path_symlink(
    _cx: &mut dyn HostCx,
    _old_path_ptr: u64,
    _old_path_len: u64,
    _fd: u32,
    _new_path_ptr: u64,
    _new_path_len: u64,
) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `sock_accept`: no sockets: writes 0 as an 8-byte value at `return_fd` ([`Errno::Fault`] if
/// the 8 bytes are not in memory, as `exports.cc` writes an `unsigned long`), then
/// [`Errno::Notsup`].
pub fn sock_accept(cx: &mut dyn HostCx, _fd: u32, _flags: u32, return_fd: u64) -> HostResult {
    let (mut mem, _) = cx.parts();
    mem.write_u64(return_fd, 0).map_err(fault)?;
    Err(Errno::Notsup.into())
}

/// `sock_recv`: no sockets: writes 0 at `return_size` and a `u16` 0 at `return_flags`
/// ([`Errno::Fault`] if either cannot be; both are checked first), then [`Errno::Notsup`]
/// (`exports.cc`).
pub fn sock_recv(
    cx: &mut dyn HostCx,
    _fd: u32,
    _ri_data_ptr: u64,
    _ri_data_len: u64,
    _ri_flags: u32,
    return_size: u64,
    return_flags: u64,
) -> HostResult {
    let (mut mem, _) = cx.parts();
    mem.check(return_size, 4).map_err(fault)?;
    mem.check(return_flags, 2).map_err(fault)?;
    mem.write_u32(return_size, 0).map_err(fault)?;
    mem.write(return_flags, &[0, 0]).map_err(fault)?;
    Err(Errno::Notsup.into())
}

/// `sock_send`: no sockets: writes 0 at `return_size` ([`Errno::Fault`] if it cannot), then
/// [`Errno::Notsup`] (`exports.cc`).
pub fn sock_send(
    cx: &mut dyn HostCx,
    _fd: u32,
    _si_data_ptr: u64,
    _si_data_len: u64,
    _si_flags: u32,
    return_size: u64,
) -> HostResult {
    nothing_then(cx, return_size, Errno::Notsup)
}

/// `sock_shutdown`: no sockets; [`Errno::Notsup`] (`exports.cc`).
pub fn sock_shutdown(_cx: &mut dyn HostCx, _fd: u32, _how: u32) -> HostResult {
    Err(Errno::Notsup.into())
}

/// `clock_time_get`: the embedder's wall clock (REALTIME) or monotonic clock (MONOTONIC) in
/// nanoseconds, as a `u64`; other clocks are [`Errno::Notsup`]. The precision is ignored.
pub fn clock_time_get(cx: &mut dyn HostCx, clock_id: u32, _precision: u64, return_time: u64) -> HostResult {
    let (mut mem, host) = cx.parts();
    let now = match ClockId::from_raw(clock_id) {
        Some(ClockId::Realtime) => host.embedder.now_nanos(),
        Some(ClockId::Monotonic) => host.embedder.monotonic_nanos(),
        _ => return Err(Errno::Notsup.into()),
    };
    mem.write_u64(return_time, now).map_err(fault)?;
    Ok(())
}

/// `clock_res_get`: 1 ns for REALTIME and MONOTONIC; other clocks are [`Errno::Notsup`].
pub fn clock_res_get(cx: &mut dyn HostCx, clock_id: u32, return_resolution: u64) -> HostResult {
    match ClockId::from_raw(clock_id) {
        Some(ClockId::Realtime | ClockId::Monotonic) => {}
        _ => return Err(Errno::Notsup.into()),
    }
    let (mut mem, _) = cx.parts();
    mem.write_u64(return_resolution, 1).map_err(fault)?;
    Ok(())
}

/// `random_get`: fills `buf_len` bytes with cryptographically secure random bytes (from the
/// operating system). More than 64 KiB is [`Errno::Inval`]; 0 bytes is [`Errno::Success`]
/// without looking at the pointer (`exports.cc` `wasi_unstable_random_get`); if the system
/// source fails, [`Errno::Nosys`].
pub fn random_get(cx: &mut dyn HostCx, buf_ptr: u64, buf_len: u64) -> HostResult {
    if buf_len > MAX_RANDOM {
        return Err(Errno::Inval.into());
    }
    if buf_len == 0 {
        return Ok(());
    }
    let (mut mem, _) = cx.parts();
    mem.check(buf_ptr, buf_len).map_err(fault)?;
    // At most 64 KiB, checked above.
    let mut bytes = vec![0u8; buf_len as usize];
    getrandom::getrandom(&mut bytes).map_err(|_| Errno::Nosys)?;
    mem.write(buf_ptr, &bytes).map_err(fault)?;
    Ok(())
}

/// The bytes the environment takes as `K=V\0` strings, checked.
fn environ_bytes(environment: &[(String, String)]) -> Result<u64, Errno> {
    environment
        .iter()
        .try_fold(0u64, |total, (k, v)| {
            let entry = (k.len() as u64).checked_add(v.len() as u64)?.checked_add(2)?;
            total.checked_add(entry)
        })
        .ok_or(Errno::Inval)
}

/// `environ_sizes_get`: the number of variables in the plugin's environment and the bytes
/// their `K=V\0` strings take.
pub fn environ_sizes_get(cx: &mut dyn HostCx, return_count: u64, return_buf_size: u64) -> HostResult {
    let (mut mem, host) = cx.parts();
    mem.check(return_count, 4).map_err(fault)?;
    mem.check(return_buf_size, 4).map_err(fault)?;
    let count = u32::try_from(host.environment.len()).map_err(|_| Errno::Inval)?;
    let size = u32::try_from(environ_bytes(&host.environment)?).map_err(|_| Errno::Inval)?;
    mem.write_u32(return_count, count).map_err(fault)?;
    mem.write_u32(return_buf_size, size).map_err(fault)?;
    Ok(())
}

/// `environ_get`: writes one `u32` pointer per variable at `environ_ptr`, each to its
/// `K=V\0` string, the strings laid out one after another from `environ_buf_ptr`. Both areas
/// are checked before anything is written.
pub fn environ_get(cx: &mut dyn HostCx, environ_ptr: u64, environ_buf_ptr: u64) -> HostResult {
    let (mut mem, host) = cx.parts();
    let pointers = (host.environment.len() as u64).checked_mul(4).ok_or(Errno::Fault)?;
    mem.check(environ_ptr, pointers).map_err(fault)?;
    mem.check(environ_buf_ptr, environ_bytes(&host.environment)?)
        .map_err(fault)?;
    let (mut slot, mut at) = (environ_ptr, environ_buf_ptr);
    for (k, v) in &host.environment {
        let entry = [k.as_bytes(), b"=", v.as_bytes(), b"\0"].concat();
        let addr = u32::try_from(at).map_err(|_| Errno::Fault)?;
        mem.write_u32(slot, addr).map_err(fault)?;
        mem.write(at, &entry).map_err(fault)?;
        slot = slot.checked_add(4).ok_or(Errno::Fault)?;
        at = at.checked_add(entry.len() as u64).ok_or(Errno::Fault)?;
    }
    Ok(())
}

/// `args_sizes_get`: no arguments: writes 0 and 0.
pub fn args_sizes_get(cx: &mut dyn HostCx, return_count: u64, return_buf_size: u64) -> HostResult {
    let (mut mem, _) = cx.parts();
    mem.check(return_count, 4).map_err(fault)?;
    mem.check(return_buf_size, 4).map_err(fault)?;
    mem.write_u32(return_count, 0).map_err(fault)?;
    mem.write_u32(return_buf_size, 0).map_err(fault)?;
    Ok(())
}

/// `args_get`: no arguments, so nothing to write.
pub fn args_get(_cx: &mut dyn HostCx, _argv_ptr: u64, _argv_buf_ptr: u64) -> HostResult {
    Ok(())
}

/// `proc_exit`: the C++ host does not end the VM: it notes the call (Envoy, at trace level) and
/// returns, so guest code after it runs (toolchains follow it with `unreachable`, which then
/// traps) (`exports.cc` `wasi_unstable_proc_exit`). We tell the embedder at TRACE and return.
pub fn proc_exit(cx: &mut dyn HostCx, code: u32) -> Result<(), Trap> {
    note_ignored(cx, &format!("proc_exit({code})"));
    Ok(())
}

/// `sched_yield`: returns at once.
pub fn sched_yield(_cx: &mut dyn HostCx) -> HostResult {
    Ok(())
}

/// `poll_oneoff`: returns at once with no events (writes 0 at `return_nevents`).
pub fn poll_oneoff(
    cx: &mut dyn HostCx,
    _in_ptr: u64,
    _out_ptr: u64,
    _nsubscriptions: u64,
    return_nevents: u64,
) -> HostResult {
    let (mut mem, _) = cx.parts();
    mem.write_u32(return_nevents, 0).map_err(fault)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use abi::{ClockId, Errno, LogLevel};

    use super::{messages, MAX_MESSAGE};
    use crate::hostcalls::testing::{TestCx, HEAP, MEM, OOB, RET_PTR, RET_SCALAR, RET_SIZE};
    use crate::hostcalls::*;
    use crate::Trap;

    /// The errno a raw WASI entry returned.
    fn errno(r: Result<i32, Trap>) -> Errno {
        Errno::from_raw(r.expect("WASI function trapped") as u32).expect("not an errno")
    }

    fn logs(cx: &TestCx) -> Vec<(LogLevel, String)> {
        cx.embedder.seen.lock().unwrap().logs.clone()
    }

    const IOVS: u64 = 1000;
    const DATA: u64 = 2000;

    /// Writes `chunks` into memory and an iovec table for them at [`IOVS`]: (table, count).
    fn iovecs(cx: &mut TestCx, chunks: &[&[u8]]) -> (u64, u64) {
        let mut at = DATA;
        let mut table = Vec::new();
        for chunk in chunks {
            cx.put(at, chunk);
            table.extend_from_slice(&(at as u32).to_le_bytes());
            table.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            at += chunk.len() as u64;
        }
        cx.put(IOVS, &table);
        (IOVS, chunks.len() as u64)
    }

    fn write(cx: &mut TestCx, fd: u32, chunks: &[&[u8]]) -> Errno {
        let (iovs, n) = iovecs(cx, chunks);
        errno(fd_write(cx, fd, iovs, n, RET_SCALAR))
    }

    #[test]
    fn fd_write_logs_each_write_as_one_message_per_fd() {
        let mut cx = TestCx::new();
        assert_eq!(write(&mut cx, 1, &[b"hello ", b"world\nsec", b"ond\n"]), Errno::Success);
        assert_eq!(cx.u32_at(RET_SCALAR), 19);
        assert_eq!(write(&mut cx, 2, &[b"oops\n\n"]), Errno::Success);
        assert_eq!(cx.u32_at(RET_SCALAR), 6);
        assert_eq!(write(&mut cx, 1, &[b"no newline"]), Errno::Success);
        assert_eq!(write(&mut cx, 1, &[b"\n"]), Errno::Success);
        assert_eq!(
            logs(&cx),
            vec![
                // One trailing newline removed; the others stay (exports.cc writevImpl).
                (LogLevel::Info, "hello world\nsecond".to_string()),
                (LogLevel::Error, "oops\n".to_string()),
                (LogLevel::Info, "no newline".to_string()),
                (LogLevel::Info, String::new()),
            ]
        );
        // No iovecs, or only empty ones: 0 written and nothing logged.
        assert_eq!(write(&mut cx, 1, &[]), Errno::Success);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        assert_eq!(write(&mut cx, 1, &[b"", b""]), Errno::Success);
        assert_eq!(logs(&cx).len(), 4);
        // Bytes that are not UTF-8 are logged lossily, not refused.
        assert_eq!(write(&mut cx, 1, &[b"a\xffb\n"]), Errno::Success);
        assert_eq!(logs(&cx)[4], (LogLevel::Info, "a\u{fffd}b".to_string()));
        // An empty iovec is skipped whatever its pointer, as the reference skips it.
        cx.put(IOVS, &[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        assert_eq!(errno(fd_write(&mut cx, 2, IOVS, 1, RET_SCALAR)), Errno::Success);
        assert_eq!(logs(&cx).len(), 5);
    }

    #[test]
    fn fd_pwrite_writes_as_fd_write_and_ignores_the_offset() {
        let mut cx = TestCx::new();
        let (iovs, n) = iovecs(&mut cx, &[b"pwrite\n"]);
        assert_eq!(errno(fd_pwrite(&mut cx, 1, iovs, n, 99, RET_SCALAR)), Errno::Success);
        assert_eq!(cx.u32_at(RET_SCALAR), 7);
        assert_eq!(logs(&cx), vec![(LogLevel::Info, "pwrite".to_string())]);
        assert_eq!(errno(fd_pwrite(&mut cx, 9, iovs, n, 0, RET_SCALAR)), Errno::Badf);
        assert_eq!(errno(fd_pwrite(&mut cx, 2, iovs, n, 0, MEM - 1)), Errno::Fault);
        assert_eq!(logs(&cx).len(), 1);
    }

    #[test]
    fn fd_write_refusals_log_and_buffer_nothing() {
        type Case = (&'static str, fn(&mut TestCx) -> Errno, Errno);
        let cases: Vec<Case> = vec![
            ("stdin", |cx| write(cx, 0, &[b"x\n"]), Errno::Badf),
            ("fd 3", |cx| write(cx, 3, &[b"x\n"]), Errno::Badf),
            ("fd u32::MAX", |cx| write(cx, u32::MAX, &[b"x\n"]), Errno::Badf),
            (
                "iovec table out of bounds",
                |cx| errno(fd_write(cx, 1, MEM - 8, 2, RET_SCALAR)),
                Errno::Fault,
            ),
            (
                "iovec count overflows",
                |cx| errno(fd_write(cx, 1, IOVS, u64::MAX / 4, RET_SCALAR)),
                Errno::Fault,
            ),
            (
                "iovec table pointer overflows",
                |cx| errno(fd_write(cx, 1, u64::MAX - 4, 1, RET_SCALAR)),
                Errno::Fault,
            ),
            (
                "an iovec outside memory",
                |cx| {
                    let (iovs, _) = iovecs(cx, &[b"ok\n"]);
                    cx.put(IOVS + 8, &[0, 0, 0xff, 0xff, 8, 0, 0, 0]);
                    errno(fd_write(cx, 1, iovs, 2, RET_SCALAR))
                },
                Errno::Fault,
            ),
            (
                "an iovec whose end wraps",
                |cx| {
                    cx.put(IOVS, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
                    errno(fd_write(cx, 1, IOVS, 1, RET_SCALAR))
                },
                Errno::Fault,
            ),
            (
                "return pointer out of bounds",
                |cx| {
                    let (iovs, n) = iovecs(cx, &[b"ok\n"]);
                    errno(fd_write(cx, 1, iovs, n, MEM - 3))
                },
                Errno::Fault,
            ),
            (
                "more than 4 GiB in total",
                |cx| {
                    // 4097 iovecs naming the whole of 1 MiB of memory: 4097 MiB.
                    cx.mem.resize(1 << 20, 0);
                    let entry = [0u32.to_le_bytes(), (1u32 << 20).to_le_bytes()].concat();
                    cx.put(MEM, &entry.repeat(4097));
                    errno(fd_write(cx, 1, MEM, 4097, RET_SCALAR))
                },
                Errno::Inval,
            ),
        ];
        for (name, call, expected) in cases {
            let mut cx = TestCx::new();
            cx.put(RET_SCALAR, &[0xaa; 4]);
            assert_eq!(call(&mut cx), expected, "{name}");
            assert!(logs(&cx).is_empty(), "{name}: logged");
            assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa, "{name}: wrote a count");
        }
    }

    #[test]
    fn long_writes_are_logged_in_pieces() {
        let mut got = Vec::new();
        messages(&vec![b'x'; MAX_MESSAGE * 2 + 10], &mut |m| got.push(m.len()));
        assert_eq!(got, [MAX_MESSAGE, MAX_MESSAGE, 10]);
        // The trailing newline goes before the write is cut.
        got.clear();
        let mut exact = vec![b'y'; MAX_MESSAGE];
        exact.push(b'\n');
        messages(&exact, &mut |m| got.push(m.len()));
        assert_eq!(got, [MAX_MESSAGE]);
        got.clear();
        messages(b"", &mut |m| got.push(m.len()));
        assert!(got.is_empty());
    }

    #[test]
    fn fixed_answers() {
        let mut cx = TestCx::new();
        let cases: Vec<(&str, Result<i32, Trap>, Errno)> = vec![
            ("fd_read", fd_read(&mut cx, 0, IOVS, 1, RET_SCALAR), Errno::Nosys),
            ("fd_pread", fd_pread(&mut cx, 1, IOVS, 1, 0, RET_SCALAR), Errno::Nosys),
            ("fd_seek", fd_seek(&mut cx, 1, 0, 0, RET_SCALAR), Errno::Success),
            ("fd_seek fd 9", fd_seek(&mut cx, 9, -1, 2, OOB), Errno::Success),
            ("fd_close", fd_close(&mut cx, 1), Errno::Success),
            ("fd_close fd 9", fd_close(&mut cx, 9), Errno::Success),
            ("fd_prestat_get", fd_prestat_get(&mut cx, 3, RET_SCALAR), Errno::Badf),
            ("fd_prestat_dir_name", fd_prestat_dir_name(&mut cx, 3, RET_SCALAR, 4), Errno::Nosys),
            ("fd_filestat_get", fd_filestat_get(&mut cx, 1, RET_SCALAR), Errno::Badf),
            ("fd_fdstat_set_flags", fd_fdstat_set_flags(&mut cx, 1, 0), Errno::Nosys),
            ("fd_advise fd 9", fd_advise(&mut cx, 9, 0, 0, 0), Errno::Success),
            ("fd_renumber 1 2", fd_renumber(&mut cx, 1, 2), Errno::Notsup),
            ("fd_renumber 1 9", fd_renumber(&mut cx, 1, 9), Errno::Badf),
            ("fd_renumber 9 1", fd_renumber(&mut cx, 9, 1), Errno::Badf),
            ("path_open", path_open(&mut cx, 3, 0, DATA, 4, 0, 0, 0, 0, RET_SCALAR), Errno::Noent),
            ("path_filestat_get", path_filestat_get(&mut cx, 3, 0, DATA, 4, RET_SCALAR), Errno::Notsup),
            ("path_filestat_set_times", path_filestat_set_times(&mut cx, 3, 0, DATA, 4, 0, 0, 0), Errno::Notsup),
            ("path_create_directory", path_create_directory(&mut cx, 3, OOB, 4), Errno::Notsup),
            ("path_remove_directory", path_remove_directory(&mut cx, 3, OOB, 4), Errno::Notsup),
            ("path_unlink_file", path_unlink_file(&mut cx, 3, OOB, 4), Errno::Notsup),
            ("path_link", path_link(&mut cx, 3, 0, DATA, 1, 3, DATA, 1), Errno::Notsup),
            ("path_rename", path_rename(&mut cx, 3, DATA, 1, 3, DATA, 1), Errno::Notsup),
            ("path_symlink", path_symlink(&mut cx, DATA, 1, 3, DATA, 1), Errno::Notsup),
            ("sock_shutdown", sock_shutdown(&mut cx, 3, 0), Errno::Notsup),
            ("sched_yield", sched_yield(&mut cx), Errno::Success),
            ("args_get", args_get(&mut cx, RET_PTR, RET_SIZE), Errno::Success),
            ("args_get out of bounds", args_get(&mut cx, OOB, OOB), Errno::Success),
        ];
        for (name, r, expected) in cases {
            assert_eq!(errno(r), expected, "{name}");
        }
        // None of them wrote anything.
        assert!(cx.mem.iter().all(|&b| b == 0));
        // fd_seek and fd_close are noted at TRACE, as Envoy's Context::error logs them.
        let noted = logs(&cx);
        assert_eq!(noted.len(), 4);
        assert!(noted.iter().all(|(level, m)| *level == LogLevel::Trace && m.contains("ignored")), "{noted:?}");
    }

    #[test]
    fn stdout_and_stderr_answer_success_and_other_fds_badf() {
        type Call = fn(&mut TestCx, u32) -> Result<i32, Trap>;
        let calls: Vec<(&str, Call)> = vec![
            ("fd_fdstat_set_rights", |cx, fd| fd_fdstat_set_rights(cx, fd, 64, 0)),
            ("fd_allocate", |cx, fd| fd_allocate(cx, fd, 0, 10)),
            ("fd_datasync", |cx, fd| fd_datasync(cx, fd)),
            ("fd_sync", |cx, fd| fd_sync(cx, fd)),
            ("fd_filestat_set_size", |cx, fd| fd_filestat_set_size(cx, fd, 0)),
            ("fd_filestat_set_times", |cx, fd| fd_filestat_set_times(cx, fd, 0, 0, 0)),
        ];
        for (name, call) in calls {
            let mut cx = TestCx::new();
            for (fd, expected) in [(0, Errno::Badf), (1, Errno::Success), (2, Errno::Success), (3, Errno::Badf)] {
                assert_eq!(errno(call(&mut cx, fd)), expected, "{name} fd {fd}");
            }
        }
    }

    #[test]
    fn slots_written_before_an_error_fault_when_out_of_memory() {
        let mut cx = TestCx::new();
        cx.put(RET_SCALAR, &[0xaa; 8]);
        assert_eq!(errno(fd_readdir(&mut cx, 3, DATA, 16, 0, RET_SCALAR)), Errno::Notdir);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        assert_eq!(errno(fd_readdir(&mut cx, 3, DATA, 16, 0, MEM - 2)), Errno::Fault);

        cx.put(RET_SCALAR, &[0xaa; 8]);
        assert_eq!(errno(fd_tell(&mut cx, 1, RET_SCALAR)), Errno::Success);
        assert_eq!(cx.u64_at(RET_SCALAR), 0);
        assert_eq!(errno(fd_tell(&mut cx, 9, OOB)), Errno::Badf);
        assert_eq!(errno(fd_tell(&mut cx, 2, MEM - 4)), Errno::Fault);

        cx.put(RET_SCALAR, &[0xaa; 8]);
        assert_eq!(errno(path_readlink(&mut cx, 3, DATA, 1, DATA, 8, RET_SCALAR)), Errno::Notsup);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        assert_eq!(errno(path_readlink(&mut cx, 3, DATA, 1, DATA, 8, OOB)), Errno::Fault);

        // sock_accept writes 8 bytes (an unsigned long in the C++ host).
        cx.put(RET_SCALAR, &[0xaa; 8]);
        assert_eq!(errno(sock_accept(&mut cx, 3, 0, RET_SCALAR)), Errno::Notsup);
        assert_eq!(cx.u64_at(RET_SCALAR), 0);
        assert_eq!(errno(sock_accept(&mut cx, 3, 0, MEM - 4)), Errno::Fault);

        cx.put(RET_SCALAR, &[0xaa; 8]);
        assert_eq!(errno(sock_recv(&mut cx, 3, DATA, 1, 0, RET_SCALAR, RET_SCALAR + 4)), Errno::Notsup);
        assert_eq!(cx.u64_at(RET_SCALAR), 0xaaaa_0000_0000_0000);
        cx.put(RET_SCALAR, &[0xaa; 8]);
        assert_eq!(errno(sock_recv(&mut cx, 3, DATA, 1, 0, RET_SCALAR, MEM - 1)), Errno::Fault);
        assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa, "nothing written when a slot is bad");

        cx.put(RET_SCALAR, &[0xaa; 8]);
        assert_eq!(errno(sock_send(&mut cx, 3, DATA, 1, 0, RET_SCALAR)), Errno::Notsup);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        assert_eq!(errno(sock_send(&mut cx, 3, DATA, 1, 0, OOB)), Errno::Fault);
        assert!(cx.mem[(MEM - 4) as usize..].iter().all(|&b| b == 0));
    }

    #[test]
    fn fd_fdstat_get_describes_stdout_and_stderr_as_the_reference() {
        let mut cx = TestCx::new();
        for fd in [1u32, 2] {
            cx.put(RET_SCALAR, &[0xaa; 24]);
            assert_eq!(errno(fd_fdstat_get(&mut cx, fd, RET_SCALAR)), Errno::Success);
            // filetype 0 (unknown), flags 0, rights_base FD_WRITE (64), rights_inheriting 0.
            let mut expected = [0u8; 24];
            expected[8] = 64;
            assert_eq!(&cx.mem[RET_SCALAR as usize..RET_SCALAR as usize + 24], &expected, "fd {fd}");
        }
        for fd in [0u32, 3] {
            assert_eq!(errno(fd_fdstat_get(&mut cx, fd, RET_SCALAR)), Errno::Badf, "fd {fd}");
            assert_eq!(errno(fd_fdstat_get(&mut cx, fd, OOB)), Errno::Badf, "fd {fd}");
        }
        assert_eq!(errno(fd_fdstat_get(&mut cx, 1, MEM - 23)), Errno::Fault);
        assert_eq!(errno(fd_fdstat_get(&mut cx, 1, u64::MAX - 8)), Errno::Fault);
        assert!(cx.mem[(MEM - 23) as usize..].iter().all(|&b| b == 0));
    }

    #[test]
    fn clocks() {
        let cases = [
            (
                ClockId::Realtime.raw(),
                Errno::Success,
                Some(1_700_000_000_123_456_789u64),
            ),
            (ClockId::Monotonic.raw(), Errno::Success, Some(42_000)),
            (ClockId::ProcessCputime.raw(), Errno::Notsup, None),
            (ClockId::ThreadCputime.raw(), Errno::Notsup, None),
            (4, Errno::Notsup, None),
            (u32::MAX, Errno::Notsup, None),
        ];
        for (id, expected, time) in cases {
            let mut cx = TestCx::new();
            cx.put(RET_SCALAR, &[0xaa; 8]);
            assert_eq!(
                errno(clock_time_get(&mut cx, id, 1000, RET_SCALAR)),
                expected,
                "clock {id}"
            );
            assert_eq!(
                cx.u64_at(RET_SCALAR),
                time.unwrap_or(0xaaaa_aaaa_aaaa_aaaa),
                "clock {id}"
            );
            cx.put(RET_SCALAR, &[0xaa; 8]);
            assert_eq!(errno(clock_res_get(&mut cx, id, RET_SCALAR)), expected, "clock {id}");
            let res = if time.is_some() { 1 } else { 0xaaaa_aaaa_aaaa_aaaa };
            assert_eq!(cx.u64_at(RET_SCALAR), res, "clock {id}");
            // An unknown clock is NOTSUP even with a bad pointer; a known one faults.
            let bad = if time.is_some() { Errno::Fault } else { Errno::Notsup };
            for ptr in [MEM - 7, OOB, u64::MAX - 3] {
                assert_eq!(errno(clock_time_get(&mut cx, id, 0, ptr)), bad, "clock {id} ptr {ptr}");
                assert_eq!(errno(clock_res_get(&mut cx, id, ptr)), bad, "clock {id} ptr {ptr}");
            }
        }
    }

    #[test]
    fn random_get_fills_only_the_buffer() {
        let mut cx = TestCx::new();
        assert_eq!(errno(random_get(&mut cx, DATA, 64)), Errno::Success);
        let filled = &cx.mem[DATA as usize..DATA as usize + 64];
        // 64 random bytes are all zero with probability 2^-512.
        assert!(filled.iter().any(|&b| b != 0));
        assert_eq!(cx.mem[DATA as usize - 1], 0);
        assert_eq!(cx.mem[DATA as usize + 64], 0);
        let first = filled.to_vec();
        assert_eq!(errno(random_get(&mut cx, DATA, 64)), Errno::Success);
        assert_ne!(&cx.mem[DATA as usize..DATA as usize + 64], &first[..]);
        // 64 KiB is allowed (the whole memory here); a zero-length buffer anywhere, even past
        // the end of memory, answers success without a look (exports.cc random_get).
        assert_eq!(errno(random_get(&mut cx, 0, 64 * 1024)), Errno::Success);
        assert_eq!(errno(random_get(&mut cx, MEM, 0)), Errno::Success);
        assert_eq!(errno(random_get(&mut cx, OOB, 0)), Errno::Success);
        assert_eq!(errno(random_get(&mut cx, u64::MAX, 0)), Errno::Success);
    }

    #[test]
    fn random_get_refusals_write_nothing() {
        let cases = [
            (0, 64 * 1024 + 1, Errno::Inval),
            (OOB, u64::MAX, Errno::Inval),
            (MEM - 8, 16, Errno::Fault),
            (OOB, 1, Errno::Fault),
            (u64::MAX - 4, 16, Errno::Fault),
        ];
        for (ptr, len, expected) in cases {
            let mut cx = TestCx::new();
            assert_eq!(errno(random_get(&mut cx, ptr, len)), expected, "ptr {ptr} len {len}");
            assert!(cx.mem.iter().all(|&b| b == 0), "ptr {ptr} len {len}");
        }
    }

    #[test]
    fn environment_is_the_configured_one() {
        let mut cx = TestCx::new();
        assert_eq!(errno(environ_sizes_get(&mut cx, RET_PTR, RET_SIZE)), Errno::Success);
        // A=1\0 and BB=22\0.
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (2, 10));
        assert_eq!(errno(environ_get(&mut cx, IOVS, HEAP)), Errno::Success);
        assert_eq!((cx.u32_at(IOVS), cx.u32_at(IOVS + 4)), (HEAP as u32, HEAP as u32 + 4));
        assert_eq!(&cx.mem[HEAP as usize..HEAP as usize + 11], b"A=1\0BB=22\0\0");
        assert_eq!(cx.u32_at(IOVS + 8), 0);

        // An empty environment: 0 and 0, and nothing written even at bad addresses.
        let mut cx = TestCx::new();
        cx.host.environment.clear();
        assert_eq!(errno(environ_sizes_get(&mut cx, RET_PTR, RET_SIZE)), Errno::Success);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(errno(environ_get(&mut cx, MEM, MEM)), Errno::Success);
    }

    #[test]
    fn environment_refusals_write_nothing() {
        let sizes = [(OOB, RET_SIZE), (RET_PTR, MEM - 2), (u64::MAX, RET_SIZE)];
        for (count, size) in sizes {
            let mut cx = TestCx::new();
            assert_eq!(
                errno(environ_sizes_get(&mut cx, count, size)),
                Errno::Fault,
                "{count} {size}"
            );
            assert!(cx.mem.iter().all(|&b| b == 0));
        }
        // The pointer array needs 8 bytes, the strings 10.
        let gets = [
            (MEM - 4, HEAP),
            (HEAP, MEM - 9),
            (u64::MAX - 3, HEAP),
            (HEAP, u64::MAX - 5),
            (OOB, OOB),
        ];
        for (environ, buf) in gets {
            let mut cx = TestCx::new();
            assert_eq!(
                errno(environ_get(&mut cx, environ, buf)),
                Errno::Fault,
                "{environ} {buf}"
            );
            assert!(cx.mem.iter().all(|&b| b == 0), "{environ} {buf}");
        }
    }

    #[test]
    fn args_are_empty() {
        let mut cx = TestCx::new();
        cx.put(RET_PTR, &[0xaa; 16]);
        assert_eq!(errno(args_sizes_get(&mut cx, RET_PTR, RET_SIZE)), Errno::Success);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        for (count, size) in [(OOB, RET_SIZE), (RET_PTR, MEM - 1), (RET_PTR, u64::MAX)] {
            let mut cx = TestCx::new();
            cx.put(RET_PTR, &[0xaa; 16]);
            assert_eq!(errno(args_sizes_get(&mut cx, count, size)), Errno::Fault);
            assert_eq!(cx.u32_at(RET_PTR), 0xaaaa_aaaa);
        }
    }

    #[test]
    fn proc_exit_is_noted_and_returns() {
        let mut cx = TestCx::new();
        for code in [0, 3, u32::MAX] {
            assert_eq!(proc_exit(&mut cx, code), Ok(0));
        }
        let noted = logs(&cx);
        assert_eq!(noted.len(), 3);
        assert_eq!(noted[1], (LogLevel::Trace, "wasi proc_exit(3): ignored, as Envoy does".to_string()));
    }

    #[test]
    fn poll_oneoff_reports_no_events() {
        let mut cx = TestCx::new();
        cx.put(RET_SCALAR, &[0xaa; 4]);
        assert_eq!(errno(poll_oneoff(&mut cx, OOB, OOB, 3, RET_SCALAR)), Errno::Success);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        for ptr in [OOB, MEM - 2, u64::MAX] {
            assert_eq!(errno(poll_oneoff(&mut cx, 0, 0, 1, ptr)), Errno::Fault, "ptr {ptr}");
        }
    }
}
