//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn fd_write(_cx: &mut dyn HostCx, _fd: u32, _iovs_ptr: u64, _iovs_len: u64, _return_written: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn fd_read(_cx: &mut dyn HostCx, _fd: u32, _iovs_ptr: u64, _iovs_len: u64, _return_read: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn fd_seek(_cx: &mut dyn HostCx, _fd: u32, _offset: i64, _whence: u32, _return_offset: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn fd_close(_cx: &mut dyn HostCx, _fd: u32) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn fd_fdstat_get(_cx: &mut dyn HostCx, _fd: u32, _return_stat: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn fd_prestat_get(_cx: &mut dyn HostCx, _fd: u32, _return_prestat: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn fd_prestat_dir_name(_cx: &mut dyn HostCx, _fd: u32, _path_ptr: u64, _path_len: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn fd_filestat_get(_cx: &mut dyn HostCx, _fd: u32, _return_stat: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn path_open(_cx: &mut dyn HostCx, _fd: u32, _dirflags: u32, _path_ptr: u64, _path_len: u64, _oflags: u32, _rights_base: u64, _rights_inheriting: u64, _fdflags: u32, _return_fd: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn path_filestat_get(_cx: &mut dyn HostCx, _fd: u32, _flags: u32, _path_ptr: u64, _path_len: u64, _return_stat: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn clock_time_get(_cx: &mut dyn HostCx, _clock_id: u32, _precision: u64, _return_time: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn clock_res_get(_cx: &mut dyn HostCx, _clock_id: u32, _return_resolution: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn random_get(_cx: &mut dyn HostCx, _buf_ptr: u64, _buf_len: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn environ_sizes_get(_cx: &mut dyn HostCx, _return_count: u64, _return_buf_size: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn environ_get(_cx: &mut dyn HostCx, _environ_ptr: u64, _environ_buf_ptr: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn args_sizes_get(_cx: &mut dyn HostCx, _return_count: u64, _return_buf_size: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn args_get(_cx: &mut dyn HostCx, _argv_ptr: u64, _argv_buf_ptr: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn proc_exit(_cx: &mut dyn HostCx, _code: u32) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn sched_yield(_cx: &mut dyn HostCx) -> HostResult {
    Err(abi::Errno::Nosys.into())
}

pub fn poll_oneoff(_cx: &mut dyn HostCx, _in_ptr: u64, _out_ptr: u64, _nsubscriptions: u64, _return_nevents: u64) -> HostResult {
    Err(abi::Errno::Nosys.into())
}
