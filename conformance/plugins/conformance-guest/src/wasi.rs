//! WASI, which only Wasm guests have: every function of the subset through raw imports
//! (`wasi` scenario), and Rust's standard library using them (`std`, on wasm32-wasip1).
//! Natively these scenarios report a failure: the Null VM's plugins use the OS directly.

use crate::fail;

#[cfg(target_arch = "wasm32")]
mod raw {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        pub fn fd_write(fd: u32, iovs: *const u32, iovs_len: usize, written: *mut usize) -> u32;
        pub fn fd_read(fd: u32, iovs: *const u32, iovs_len: usize, read: *mut usize) -> u32;
        pub fn fd_seek(fd: u32, offset: i64, whence: u32, new_offset: *mut u64) -> u32;
        pub fn fd_close(fd: u32) -> u32;
        pub fn fd_fdstat_get(fd: u32, stat: *mut u8) -> u32;
        pub fn fd_prestat_get(fd: u32, prestat: *mut u8) -> u32;
        pub fn fd_prestat_dir_name(fd: u32, path: *mut u8, path_len: usize) -> u32;
        pub fn fd_filestat_get(fd: u32, stat: *mut u8) -> u32;
        pub fn path_open(
            fd: u32,
            dirflags: u32,
            path: *const u8,
            path_len: usize,
            oflags: u32,
            rights_base: u64,
            rights_inheriting: u64,
            fdflags: u32,
            opened: *mut u32,
        ) -> u32;
        pub fn path_filestat_get(fd: u32, flags: u32, path: *const u8, path_len: usize, stat: *mut u8) -> u32;
        pub fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u32;
        pub fn clock_res_get(id: u32, resolution: *mut u64) -> u32;
        pub fn random_get(buf: *mut u8, len: usize) -> u32;
        pub fn environ_sizes_get(count: *mut usize, size: *mut usize) -> u32;
        pub fn environ_get(environ: *mut *mut u8, buf: *mut u8) -> u32;
        pub fn args_sizes_get(count: *mut usize, size: *mut usize) -> u32;
        pub fn args_get(argv: *mut *mut u8, buf: *mut u8) -> u32;
        pub fn sched_yield() -> u32;
        pub fn poll_oneoff(subscriptions: *const u8, events: *mut u8, n: usize, nevents: *mut usize) -> u32;
    }
}

/// WASI errnos.
#[cfg(target_arch = "wasm32")]
mod errno {
    pub const SUCCESS: u32 = 0;
    pub const BADF: u32 = 8;
    pub const INVAL: u32 = 28;
    pub const NOENT: u32 = 44;
    pub const NOSYS: u32 = 52;
    pub const NOTSUP: u32 = 58;
}

/// Every function of the subset, each checked against the ABI reference (and, where the
/// reference defers to it, the C++ host).
#[cfg(target_arch = "wasm32")]
pub fn all() {
    use crate::status;
    use errno::*;
    use raw::*;

    // SAFETY (every call below): each pointer is to a local (or a static string) of at least
    // the size the function writes or reads, and each length describes its buffer.
    unsafe {
        let line = b"hello from fd_write\n";
        let iov = [line.as_ptr() as u32, line.len() as u32];
        let mut written = 0usize;
        status("fd_write to stdout", fd_write(1, iov.as_ptr(), 1, &mut written), SUCCESS);
        if written != line.len() {
            fail(format!("fd_write wrote {written} of {} bytes", line.len()));
        }
        let err = b"oops on stderr\n";
        let iov_err = [err.as_ptr() as u32, err.len() as u32];
        status("fd_write to stderr", fd_write(2, iov_err.as_ptr(), 1, &mut written), SUCCESS);
        status("fd_write to fd 9", fd_write(9, iov.as_ptr(), 1, &mut written), BADF);
        status("fd_read", fd_read(0, iov.as_ptr(), 1, &mut written), NOSYS);
        let mut offset = 0u64;
        // The C++ host answers success for both, and writes no offset (exports.cc).
        status("fd_seek", fd_seek(1, 0, 0, &mut offset), SUCCESS);
        status("fd_close", fd_close(1), SUCCESS);
        let mut stat = [0xaau8; 64];
        status("fd_fdstat_get of stdout", fd_fdstat_get(1, stat.as_mut_ptr()), SUCCESS);
        // filetype 0 (unknown), flags 0, rights_base FD_WRITE (64), rights_inheriting 0.
        let mut want = [0u8; 24];
        want[8] = 64;
        if stat[..24] != want {
            fail(format!("fd_fdstat_get of stdout wrote {:?}, the C++ host writes {want:?}", &stat[..24]));
        }
        status("fd_fdstat_get of stdin", fd_fdstat_get(0, stat.as_mut_ptr()), BADF);
        status("fd_fdstat_get of fd 9", fd_fdstat_get(9, stat.as_mut_ptr()), BADF);
        status("fd_prestat_get", fd_prestat_get(3, stat.as_mut_ptr()), BADF);
        status("fd_prestat_dir_name", fd_prestat_dir_name(3, stat.as_mut_ptr(), 8), NOSYS);
        status("fd_filestat_get", fd_filestat_get(1, stat.as_mut_ptr()), BADF);
        let path = b"etc/passwd";
        let mut fd = 0u32;
        status("path_open", path_open(3, 0, path.as_ptr(), path.len(), 0, 0, 0, 0, &mut fd), NOENT);
        status("path_filestat_get", path_filestat_get(3, 0, path.as_ptr(), path.len(), stat.as_mut_ptr()), NOTSUP);
        let mut time = 0u64;
        status("clock_time_get REALTIME", clock_time_get(0, 1, &mut time), SUCCESS);
        if time != 1_704_067_200_000_000_000 {
            fail(format!("REALTIME is the host's clock (2024-01-01 in the scripted embedder), got {time}"));
        }
        status("clock_time_get MONOTONIC", clock_time_get(1, 1, &mut time), SUCCESS);
        status("clock_time_get PROCESS_CPUTIME", clock_time_get(2, 1, &mut time), NOTSUP);
        let mut resolution = 0u64;
        status("clock_res_get REALTIME", clock_res_get(0, &mut resolution), SUCCESS);
        if resolution != 1 {
            fail(format!("clock resolution {resolution}, expected 1 ns"));
        }
        status("clock_res_get of clock 7", clock_res_get(7, &mut resolution), NOTSUP);
        let mut random = [0u8; 32];
        status("random_get of 32 bytes", random_get(random.as_mut_ptr(), random.len()), SUCCESS);
        if random == [0u8; 32] {
            fail("random_get left its buffer zeroed".into());
        }
        status("random_get of nothing", random_get(random.as_mut_ptr(), 0), SUCCESS);
        status("random_get of more than 64 KiB", random_get(random.as_mut_ptr(), 64 * 1024 + 1), INVAL);
        let (mut count, mut size) = (0usize, 0usize);
        status("environ_sizes_get", environ_sizes_get(&mut count, &mut size), SUCCESS);
        if (count, size) != (1, 15) {
            fail(format!("the environment is GREETING=hello: 1 variable in 15 bytes; got {count}, {size}"));
        }
        let mut pointers = [std::ptr::null_mut::<u8>(); 1];
        let mut buf = [0u8; 15];
        status("environ_get", environ_get(pointers.as_mut_ptr(), buf.as_mut_ptr()), SUCCESS);
        if &buf != b"GREETING=hello\0" || pointers[0] != buf.as_mut_ptr() {
            fail(format!("environ_get wrote {:?}", String::from_utf8_lossy(&buf)));
        }
        status("args_sizes_get", args_sizes_get(&mut count, &mut size), SUCCESS);
        if (count, size) != (0, 0) {
            fail(format!("a plugin has no arguments; got {count}, {size}"));
        }
        status("args_get", args_get(pointers.as_mut_ptr(), buf.as_mut_ptr()), SUCCESS);
        status("sched_yield", sched_yield(), SUCCESS);
        let mut events = 7usize;
        status("poll_oneoff", poll_oneoff(stat.as_ptr(), stat.as_mut_ptr(), 0, &mut events), SUCCESS);
        if events != 0 {
            fail(format!("poll_oneoff reported {events} events"));
        }
    }
}

/// WASI is Wasm-only.
#[cfg(not(target_arch = "wasm32"))]
pub fn all() {
    fail("the wasi scenario is Wasm-only".into());
}

/// Rust's standard library on wasm32-wasip1: printing, the environment, the clock.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub fn std_io() {
    println!("println from the plugin");
    eprintln!("eprintln from the plugin");
    match std::env::var("GREETING") {
        Ok(v) if v == "hello" => {}
        other => fail(format!("GREETING is hello in the environment, got {other:?}")),
    }
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).ok();
    if since_epoch != Some(1_704_067_200) {
        fail(format!("SystemTime::now is the host's clock, got {since_epoch:?}"));
    }
}

/// Without WASI's standard library there is nothing to show.
#[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
pub fn std_io() {
    fail("the std scenario needs the wasm32-wasip1 build".into());
}
