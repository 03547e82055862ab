//! The WASI preview1 subset SDK guests import (from `wasi_snapshot_preview1` or
//! `wasi_unstable`).
//!
//! WASI is wasm32 only: an iovec is 8 bytes (pointer `u32`, length `u32`) and every pointer the
//! host writes is a `u32`. Every function answers a WASI [`Errno`], never a Proxy-Wasm status:
//! any pointer or length outside guest memory is [`Errno::Fault`]. Standard output and error go
//! to the plugin's log, line by line; there is no file system, and the environment is the
//! plugin's configured one, never the host's.

use abi::{ClockId, Errno, LogLevel, Status};

use crate::{HostCx, HostError, HostResult, Trap, TrapKind};

/// Bytes in a wasm32 iovec: pointer `u32`, length `u32`.
const IOVEC_SIZE: u64 = 8;

/// The most bytes one log line from `fd_write` holds; a longer line is logged in pieces of this
/// size, so a guest that never writes a newline cannot grow host memory without bound.
const MAX_LINE: usize = 64 * 1024;

/// The most bytes one `random_get` fills, as in the C++ host.
const MAX_RANDOM: u64 = 64 * 1024;

/// Bytes in a WASI `fdstat`.
const FDSTAT_SIZE: usize = 24;
/// WASI `filetype::character_device`.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// WASI `rights::fd_read`.
const RIGHT_FD_READ: u64 = 1 << 1;
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

/// Appends `data` to the pending line `pending` and passes every finished line (without its
/// newline) to `emit`. A line reaching [`MAX_LINE`] bytes is passed on at that size.
fn feed_lines(pending: &mut Vec<u8>, mut data: &[u8], emit: &mut dyn FnMut(&[u8])) {
    while !data.is_empty() {
        let room = MAX_LINE.saturating_sub(pending.len());
        // A newline right after a full line ends that line (and adds no empty one).
        let window = &data[..data.len().min(room.saturating_add(1))];
        if let Some(i) = window.iter().position(|&b| b == b'\n') {
            pending.extend_from_slice(&window[..i]);
            emit(pending);
            pending.clear();
            data = &data[i + 1..];
        } else if data.len() <= room {
            pending.extend_from_slice(data);
            return;
        } else {
            pending.extend_from_slice(&data[..room]);
            emit(pending);
            pending.clear();
            data = &data[room..];
        }
    }
}

/// `fd_write`: fd 1 (stdout) goes to the plugin log at INFO, fd 2 (stderr) at ERROR, one log
/// line per complete `\n`-terminated line; a partial line waits for the next write. Other fds
/// are [`Errno::Badf`]. Writes the number of bytes taken at `return_written`; iovecs adding up
/// to more than `u32::MAX` bytes are [`Errno::Inval`]. Every iovec and the return pointer are
/// checked before anything is logged.
pub fn fd_write(cx: &mut dyn HostCx, fd: u32, iovs_ptr: u64, iovs_len: u64, return_written: u64) -> HostResult {
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
        mem.check(ptr, len).map_err(fault)?;
        total = total.checked_add(len).ok_or(Errno::Inval)?;
    }
    let written = u32::try_from(total).map_err(|_| Errno::Inval)?;

    let embedder = host.embedder.clone();
    let plugin = host.plugin().cloned();
    let pending = &mut host.wasi_line[(fd - 1) as usize];
    let mut emit = |line: &[u8]| embedder.log(plugin.as_deref(), level, &String::from_utf8_lossy(line));
    for iov in table.chunks_exact(IOVEC_SIZE as usize) {
        let data = mem
            .read(u64::from(u32_at(iov, 0)), u64::from(u32_at(iov, 4)))
            .map_err(fault)?;
        feed_lines(pending, data, &mut emit);
    }
    mem.write_u32(return_written, written).map_err(fault)?;
    Ok(())
}

/// `fd_read`: nothing can be read; [`Errno::Nosys`].
pub fn fd_read(_cx: &mut dyn HostCx, _fd: u32, _iovs_ptr: u64, _iovs_len: u64, _return_read: u64) -> HostResult {
    Err(Errno::Nosys.into())
}

/// `fd_seek`: no fd can seek; [`Errno::Badf`]. (The C++ host answers success without writing
/// the new offset, and logs an error; an error code is the honest answer.)
pub fn fd_seek(_cx: &mut dyn HostCx, _fd: u32, _offset: i64, _whence: u32, _return_offset: u64) -> HostResult {
    Err(Errno::Badf.into())
}

/// `fd_close`: no fd can be closed; [`Errno::Badf`]. (The C++ host answers success and logs an
/// error.)
pub fn fd_close(_cx: &mut dyn HostCx, _fd: u32) -> HostResult {
    Err(Errno::Badf.into())
}

/// `fd_fdstat_get`: fds 0, 1 and 2 are character devices (0 readable, 1 and 2 writable), so
/// that toolchains' start-up code finds them; other fds are [`Errno::Badf`].
pub fn fd_fdstat_get(cx: &mut dyn HostCx, fd: u32, return_stat: u64) -> HostResult {
    let rights = match fd {
        0 => RIGHT_FD_READ,
        1 | 2 => RIGHT_FD_WRITE,
        _ => return Err(Errno::Badf.into()),
    };
    // filetype u8 at 0, flags u16 at 2, rights_base u64 at 8, rights_inheriting u64 at 16.
    let mut stat = [0u8; FDSTAT_SIZE];
    stat[0] = FILETYPE_CHARACTER_DEVICE;
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    let (mut mem, _) = cx.parts();
    mem.write(return_stat, &stat).map_err(fault)?;
    Ok(())
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
/// operating system). More than 64 KiB is [`Errno::Inval`]; if the system source fails,
/// [`Errno::Nosys`].
pub fn random_get(cx: &mut dyn HostCx, buf_ptr: u64, buf_len: u64) -> HostResult {
    if buf_len > MAX_RANDOM {
        return Err(Errno::Inval.into());
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

/// `proc_exit`: ends the VM with a trap that names the exit code.
pub fn proc_exit(_cx: &mut dyn HostCx, code: u32) -> HostResult {
    Err(HostError::Trap(Trap::new(TrapKind::Exit(code), format!("plugin called proc_exit({code})"))))
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

    use super::{feed_lines, MAX_LINE};
    use crate::hostcalls::testing::{TestCx, HEAP, MEM, OOB, RET_PTR, RET_SCALAR, RET_SIZE};
    use crate::hostcalls::{
        args_get, args_sizes_get, clock_res_get, clock_time_get, environ_get, environ_sizes_get, fd_close,
        fd_fdstat_get, fd_filestat_get, fd_prestat_dir_name, fd_prestat_get, fd_read, fd_seek, fd_write,
        path_filestat_get, path_open, poll_oneoff, proc_exit, random_get, sched_yield,
    };
    use crate::{Trap, TrapKind};

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
    fn fd_write_logs_complete_lines_per_fd() {
        let mut cx = TestCx::new();
        assert_eq!(write(&mut cx, 1, &[b"hello ", b"world\nsec", b"ond"]), Errno::Success);
        assert_eq!(cx.u32_at(RET_SCALAR), 18);
        assert_eq!(logs(&cx), vec![(LogLevel::Info, "hello world".to_string())]);
        assert_eq!(write(&mut cx, 2, &[b"oops\n\nlast"]), Errno::Success);
        assert_eq!(cx.u32_at(RET_SCALAR), 10);
        assert_eq!(write(&mut cx, 1, &[b" line\n"]), Errno::Success);
        assert_eq!(
            logs(&cx),
            vec![
                (LogLevel::Info, "hello world".to_string()),
                (LogLevel::Error, "oops".to_string()),
                (LogLevel::Error, String::new()),
                (LogLevel::Info, "second line".to_string()),
            ]
        );
        // stderr still holds its partial line; no iovecs writes 0 and logs nothing.
        assert_eq!(cx.host.wasi_line[1], b"last");
        assert!(cx.host.wasi_line[0].is_empty());
        assert_eq!(write(&mut cx, 1, &[]), Errno::Success);
        assert_eq!(cx.u32_at(RET_SCALAR), 0);
        assert_eq!(logs(&cx).len(), 4);
        // Bytes that are not UTF-8 are logged lossily, not refused.
        assert_eq!(write(&mut cx, 1, &[b"a\xffb\n"]), Errno::Success);
        assert_eq!(logs(&cx)[4], (LogLevel::Info, "a\u{fffd}b".to_string()));
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
            assert!(cx.host.wasi_line.iter().all(Vec::is_empty), "{name}: buffered");
            assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa, "{name}: wrote a count");
        }
    }

    #[test]
    fn long_lines_are_logged_in_pieces() {
        let mut lines = Vec::new();
        let mut pending = Vec::new();
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        feed_lines(&mut pending, &long, &mut |l| lines.push(l.len()));
        assert_eq!(lines, [MAX_LINE, MAX_LINE]);
        assert_eq!(pending.len(), 10);
        // A line of exactly MAX_LINE bytes and its newline give one line, not an extra empty one.
        feed_lines(&mut pending, &vec![b'y'; MAX_LINE - 10], &mut |l| lines.push(l.len()));
        feed_lines(&mut pending, b"\nz\n", &mut |l| lines.push(l.len()));
        assert_eq!(lines, [MAX_LINE, MAX_LINE, MAX_LINE, 1]);
        assert!(pending.is_empty());
    }

    #[test]
    fn fixed_answers() {
        let mut cx = TestCx::new();
        let cases: Vec<(&str, Result<i32, Trap>, Errno)> = vec![
            ("fd_read", fd_read(&mut cx, 0, IOVS, 1, RET_SCALAR), Errno::Nosys),
            ("fd_seek", fd_seek(&mut cx, 1, 0, 0, RET_SCALAR), Errno::Badf),
            ("fd_close", fd_close(&mut cx, 1), Errno::Badf),
            ("fd_prestat_get", fd_prestat_get(&mut cx, 3, RET_SCALAR), Errno::Badf),
            (
                "fd_prestat_dir_name",
                fd_prestat_dir_name(&mut cx, 3, RET_SCALAR, 4),
                Errno::Nosys,
            ),
            ("fd_filestat_get", fd_filestat_get(&mut cx, 1, RET_SCALAR), Errno::Badf),
            (
                "path_open",
                path_open(&mut cx, 3, 0, DATA, 4, 0, 0, 0, 0, RET_SCALAR),
                Errno::Noent,
            ),
            (
                "path_filestat_get",
                path_filestat_get(&mut cx, 3, 0, DATA, 4, RET_SCALAR),
                Errno::Notsup,
            ),
            ("sched_yield", sched_yield(&mut cx), Errno::Success),
            ("args_get", args_get(&mut cx, RET_PTR, RET_SIZE), Errno::Success),
            ("args_get out of bounds", args_get(&mut cx, OOB, OOB), Errno::Success),
        ];
        for (name, r, expected) in cases {
            assert_eq!(errno(r), expected, "{name}");
        }
        // None of them wrote anything.
        assert!(cx.mem.iter().all(|&b| b == 0));
    }

    #[test]
    fn fd_fdstat_get_describes_the_standard_fds() {
        let mut cx = TestCx::new();
        for (fd, rights) in [(0u32, 1u64 << 1), (1, 1 << 6), (2, 1 << 6)] {
            cx.put(RET_SCALAR, &[0xaa; 24]);
            assert_eq!(errno(fd_fdstat_get(&mut cx, fd, RET_SCALAR)), Errno::Success);
            let mut expected = [0u8; 24];
            expected[0] = 2;
            expected[8..16].copy_from_slice(&rights.to_le_bytes());
            assert_eq!(
                &cx.mem[RET_SCALAR as usize..RET_SCALAR as usize + 24],
                &expected,
                "fd {fd}"
            );
        }
        assert_eq!(errno(fd_fdstat_get(&mut cx, 3, RET_SCALAR)), Errno::Badf);
        assert_eq!(errno(fd_fdstat_get(&mut cx, 3, OOB)), Errno::Badf);
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
        // 64 KiB is allowed (the whole memory here); a zero-length buffer anywhere in bounds too.
        assert_eq!(errno(random_get(&mut cx, 0, 64 * 1024)), Errno::Success);
        assert_eq!(errno(random_get(&mut cx, MEM, 0)), Errno::Success);
    }

    #[test]
    fn random_get_refusals_write_nothing() {
        let cases = [
            (0, 64 * 1024 + 1, Errno::Inval),
            (OOB, u64::MAX, Errno::Inval),
            (MEM - 8, 16, Errno::Fault),
            (OOB, 1, Errno::Fault),
            (u64::MAX - 4, 16, Errno::Fault),
            (OOB, 0, Errno::Fault),
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
    fn proc_exit_traps_with_the_code() {
        let mut cx = TestCx::new();
        for code in [0, 3, u32::MAX] {
            let trap = proc_exit(&mut cx, code).unwrap_err();
            assert_eq!(trap.kind, TrapKind::Exit(code));
            assert_eq!(trap.message, format!("plugin called proc_exit({code})"));
        }
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
