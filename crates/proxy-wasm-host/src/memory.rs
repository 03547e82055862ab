//! Guest memory as host functions see it: bounds-checked reads and writes, pointer-width
//! neutral, and the re-entrant guest allocator.

use abi::Status;

use crate::{Trap, VmHost};

/// The width of a guest pointer or `size_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordSize {
    /// wasm32: 4 bytes.
    W32,
    /// A native plugin on a 64-bit host (the Null VM): 8 bytes.
    W64,
}

impl WordSize {
    /// Bytes in a word.
    pub const fn bytes(self) -> u64 {
        match self {
            WordSize::W32 => 4,
            WordSize::W64 => 8,
        }
    }
}

/// A borrowed view of guest memory. For a Wasm guest it is the instance's linear memory and
/// every access is bounds-checked with overflow-free arithmetic: out of bounds is
/// [`Status::InvalidMemoryAccess`]. For a native guest (the Null VM) it is the process's own
/// memory, where only null and wrapping ranges can be refused: see [`GuestMemory::native`].
pub struct GuestMemory<'a> {
    backing: Backing<'a>,
    word: WordSize,
}

enum Backing<'a> {
    /// A Wasm instance's linear memory.
    Linear(&'a mut [u8]),
    /// The process's memory, for native guests.
    Native(std::marker::PhantomData<&'a mut [u8]>),
}

impl<'a> GuestMemory<'a> {
    /// A view of `bytes` (the whole linear memory) for a guest with `word`-sized pointers.
    pub fn new(bytes: &'a mut [u8], word: WordSize) -> Self {
        GuestMemory { backing: Backing::Linear(bytes), word }
    }

    /// A view of the process's own memory, for a native guest with 64-bit pointers: a pointer
    /// is an address. Null pointers (with a non-zero length) and ranges that wrap around the
    /// address space are refused with [`Status::InvalidMemoryAccess`]; nothing else can be
    /// checked.
    ///
    /// # Safety
    /// The caller vouches for the guest: every non-null pointer and length it passes must
    /// describe memory valid for reads (and for writes, where the ABI writes), not aliased by
    /// any live Rust reference of the host, for as long as this view lives. That is exactly
    /// the trust the Null VM places in native plugins: it has no sandbox.
    pub unsafe fn native() -> Self {
        GuestMemory { backing: Backing::Native(std::marker::PhantomData), word: WordSize::W64 }
    }

    /// The guest's word size.
    pub fn word_size(&self) -> WordSize {
        self.word
    }

    /// Whether this is a native guest's memory (no bounds to check).
    pub fn is_native(&self) -> bool {
        matches!(self.backing, Backing::Native(_))
    }

    /// Checks that `ptr..ptr + len` lies inside memory (for a native guest: is not null and
    /// does not wrap), without touching it.
    pub fn check(&self, ptr: u64, len: u64) -> Result<(), Status> {
        let end = ptr.checked_add(len).ok_or(Status::InvalidMemoryAccess)?;
        match &self.backing {
            Backing::Linear(bytes) if end > bytes.len() as u64 => Err(Status::InvalidMemoryAccess),
            Backing::Linear(_) => Ok(()),
            Backing::Native(_) if len > 0 && ptr == 0 => Err(Status::InvalidMemoryAccess),
            // A slice may not be longer than isize::MAX bytes or end past the address space.
            Backing::Native(_) if usize::try_from(end).is_err() || len > isize::MAX as u64 => {
                Err(Status::InvalidMemoryAccess)
            }
            Backing::Native(_) => Ok(()),
        }
    }

    /// Checks that a word can be written at `ptr`.
    pub fn check_word(&self, ptr: u64) -> Result<(), Status> {
        self.check(ptr, self.word.bytes())
    }

    /// The bytes at `ptr..ptr + len`.
    pub fn read(&self, ptr: u64, len: u64) -> Result<&[u8], Status> {
        self.check(ptr, len)?;
        match &self.backing {
            // In bounds (checked above), so both ends fit in usize.
            Backing::Linear(bytes) => Ok(&bytes[ptr as usize..(ptr + len) as usize]),
            Backing::Native(_) if len == 0 => Ok(&[]),
            // SAFETY: `native`'s contract: the guest's non-null pointer and length describe
            // readable memory no host reference aliases while this view lives; `check` refused
            // null, wrapping and over-long ranges.
            Backing::Native(_) => Ok(unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }),
        }
    }

    /// A `u32` (little-endian) at `ptr`.
    pub fn read_u32(&self, ptr: u64) -> Result<u32, Status> {
        let b = self.read(ptr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A word (pointer or size) at `ptr`, widened to `u64`.
    pub fn read_word(&self, ptr: u64) -> Result<u64, Status> {
        match self.word {
            WordSize::W32 => self.read_u32(ptr).map(u64::from),
            WordSize::W64 => {
                let b = self.read(ptr, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(u64::from_le_bytes(a))
            }
        }
    }

    /// Writes `data` at `ptr`.
    pub fn write(&mut self, ptr: u64, data: &[u8]) -> Result<(), Status> {
        let len = data.len() as u64;
        self.check(ptr, len)?;
        match &mut self.backing {
            // In bounds (checked above), so both ends fit in usize.
            Backing::Linear(bytes) => bytes[ptr as usize..(ptr + len) as usize].copy_from_slice(data),
            Backing::Native(_) if data.is_empty() => {}
            // SAFETY: `native`'s contract: the guest's non-null pointer and length describe
            // writable memory no host reference aliases while this view lives (so not `data`
            // either); `check` refused null, wrapping and over-long ranges.
            Backing::Native(_) => unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), ptr as usize as *mut u8, data.len());
            },
        }
        Ok(())
    }

    /// Writes a `u32` (little-endian) at `ptr`.
    pub fn write_u32(&mut self, ptr: u64, value: u32) -> Result<(), Status> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Writes a `u64` (little-endian) at `ptr`.
    pub fn write_u64(&mut self, ptr: u64, value: u64) -> Result<(), Status> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Writes a word (pointer or size) at `ptr`; a value too wide for a 32-bit word is
    /// [`Status::InvalidMemoryAccess`] (it cannot describe guest memory).
    pub fn write_word(&mut self, ptr: u64, value: u64) -> Result<(), Status> {
        match self.word {
            WordSize::W32 => {
                let v = u32::try_from(value).map_err(|_| Status::InvalidMemoryAccess)?;
                self.write_u32(ptr, v)
            }
            WordSize::W64 => self.write_u64(ptr, value),
        }
    }
}

/// What a host function sees of the instance that called it. Engines implement it over their
/// caller handle (for example wasmtime's `Caller`).
pub trait HostCx {
    /// Guest memory and host state, borrowed together. A Wasm module without memory gives an
    /// empty view, so every access is out of bounds.
    fn parts(&mut self) -> (GuestMemory<'_>, &mut VmHost);

    /// Calls the guest's allocator (`malloc`, else `proxy_on_memory_allocate`) for `size` bytes,
    /// re-entrantly, and returns the address it gave (0 when it failed). Guest code runs: no
    /// borrow of memory or host state may be held across this call. A trap in the allocator
    /// is returned as `Err` and fails the VM.
    fn allocate(&mut self, size: u64) -> Result<u64, Trap>;

    /// The host state alone.
    fn host(&mut self) -> &mut VmHost {
        self.parts().1
    }

    /// The end of a host function that returns bytes, once it has checked the return words:
    /// `data` copied into memory from the guest allocator (address 0, without calling it, when
    /// `data` is empty), then its address and length written to the words at `return_ptr` and
    /// `return_size`. An allocator that answers 0, or an address whose range lies outside
    /// memory, gives [`Status::InvalidMemoryAccess`]; a trap in the allocator is the error.
    /// While the allocator runs, host calls are restricted as the C++ host restricts them
    /// (`WasmBase::allocMemory`: [`abi::RestrictedPhase::Allocator`]), and it is traced as a
    /// callback when tracing is on.
    ///
    /// Provided, and not for an engine to override: it is the host's code, a method of the
    /// trait only so that it is compiled for each engine's context, with direct calls to its
    /// [`parts`](Self::parts), [`allocate`](Self::allocate) and [`host`](Self::host). Over
    /// `&mut dyn HostCx` each would be a dynamic call, and the view `parts` returns would come
    /// back through the stack, where reading it stalled a header lookup on every call (its
    /// words are stored one by one and read back two at a time).
    fn return_allocated(&mut self, return_ptr: u64, return_size: u64, data: &[u8]) -> HostResult {
        let addr = match data.len() as u64 {
            0 => 0,
            len => match allocate(self, len)? {
                0 => return Err(Status::InvalidMemoryAccess.into()),
                addr => addr,
            },
        };
        let (mut mem, _) = self.parts();
        if addr != 0 {
            mem.write(addr, data)?;
        }
        mem.write_word(return_ptr, addr)?;
        mem.write_word(return_size, data.len() as u64)?;
        Ok(())
    }
}

/// Why a host function did not answer OK: a status for the guest (or a WASI errno), or a trap
/// that fails the VM.
#[derive(Debug)]
pub enum HostError {
    /// A Proxy-Wasm status returned to the guest.
    Status(Status),
    /// A WASI errno returned to the guest.
    Errno(abi::Errno),
    /// The call cannot go on: the VM fails with this trap.
    Trap(Trap),
}

impl From<Status> for HostError {
    fn from(s: Status) -> Self {
        HostError::Status(s)
    }
}

impl From<abi::Errno> for HostError {
    fn from(e: abi::Errno) -> Self {
        HostError::Errno(e)
    }
}

impl From<Trap> for HostError {
    fn from(t: Trap) -> Self {
        HostError::Trap(t)
    }
}

/// What a host function's implementation returns.
pub type HostResult<T = ()> = Result<T, HostError>;

/// Copies `data` into guest memory allocated by the guest's allocator, and writes its address
/// and length to the words at `return_ptr` and `return_size`.
///
/// The return pointers are checked before anything is allocated. Empty data is returned as
/// address 0 and length 0 without calling the allocator. An allocator that answers 0 or an
/// address whose range lies outside memory gives [`Status::InvalidMemoryAccess`].
pub fn return_bytes(cx: &mut dyn HostCx, return_ptr: u64, return_size: u64, data: &[u8]) -> HostResult {
    {
        let (mem, _) = cx.parts();
        mem.check_word(return_ptr)?;
        mem.check_word(return_size)?;
    }
    cx.return_allocated(return_ptr, return_size, data)
}

/// Calls the guest allocator through `cx`, recording the call when tracing is on. While it
/// runs, host calls are restricted as the C++ host restricts them (`WasmBase::allocMemory`:
/// [`abi::RestrictedPhase::Allocator`]); the phase before is restored after, so a restriction
/// nests.
#[inline]
fn allocate<C: HostCx + ?Sized>(cx: &mut C, size: u64) -> Result<u64, Trap> {
    let host = cx.host();
    let outer = host.restricted.replace(abi::RestrictedPhase::Allocator);
    let result = match host.trace.clone() {
        None => cx.allocate(size),
        Some(trace) => {
            let index = trace.begin_callback(host.allocator, 0, &[size]);
            let result = cx.allocate(size);
            trace.end_callback(index, &result);
            result
        }
    };
    cx.host().restricted = outer;
    result
}

/// Reads `ptr..ptr + len` from guest memory into an owned buffer.
pub fn read_vec(cx: &mut dyn HostCx, ptr: u64, len: u64) -> HostResult<Vec<u8>> {
    let (mem, _) = cx.parts();
    Ok(mem.read(ptr, len)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_checks_do_not_overflow() {
        let mut buf = vec![0u8; 16];
        let mut m = GuestMemory::new(&mut buf, WordSize::W32);
        assert!(m.read(0, 16).is_ok());
        assert!(m.read(16, 0).is_ok());
        assert_eq!(m.read(16, 1), Err(Status::InvalidMemoryAccess));
        assert_eq!(m.read(u64::MAX, 2), Err(Status::InvalidMemoryAccess));
        assert_eq!(m.read(1, u64::MAX), Err(Status::InvalidMemoryAccess));
        assert_eq!(m.write_u32(13, 1), Err(Status::InvalidMemoryAccess));
        assert_eq!(m.write_word(0, 1 << 32), Err(Status::InvalidMemoryAccess));
        m.write_word(4, 0xdead_beef).unwrap();
        assert_eq!(m.read_word(4), Ok(0xdead_beef));
    }

    #[test]
    fn words_are_eight_bytes_natively() {
        let mut buf = vec![0u8; 16];
        let mut m = GuestMemory::new(&mut buf, WordSize::W64);
        m.write_word(8, 1 << 40).unwrap();
        assert_eq!(m.read_word(8), Ok(1 << 40));
        assert_eq!(m.check_word(9), Err(Status::InvalidMemoryAccess));
    }

    #[test]
    fn native_memory_is_the_process_memory() {
        let mut buf = [0u8; 16];
        let at = buf.as_mut_ptr() as usize as u64;
        // SAFETY: every pointer below is into `buf`, which outlives the view and is not
        // otherwise borrowed while the view is used; the others are refused before use.
        let mut m = unsafe { GuestMemory::native() };
        m.write_word(at, 1 << 40).unwrap();
        assert_eq!(m.read_word(at), Ok(1 << 40));
        m.write(at + 8, b"abc").unwrap();
        assert_eq!(m.read(at + 8, 3), Ok(&b"abc"[..]));
        assert_eq!(m.read(0, 0), Ok(&[][..]), "null with no length is an empty input");
        assert_eq!(m.read(0, 1), Err(Status::InvalidMemoryAccess));
        assert_eq!(m.read(u64::MAX, 2), Err(Status::InvalidMemoryAccess));
        assert_eq!(m.write(0, b"x"), Err(Status::InvalidMemoryAccess));
        assert!(m.is_native());
        // The view's writes went to `buf` itself.
        assert_eq!(&buf[0..8], &(1u64 << 40).to_le_bytes());
    }
}
