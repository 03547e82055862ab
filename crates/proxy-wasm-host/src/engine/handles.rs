//! [`CallbackHandles`]: an instance's callback handles, each resolved on its first call.

use abi::Callback;

use crate::{CallbackSet, Trap};

/// An instance's typed callback handles (`H`, the engine's handle type), each resolved on the
/// callback's first call and kept: a VM that never sees a stream never looks up the stream
/// callbacks, and the instance stays small (a byte per callback, the handles in a list), which
/// matters as an instance is moved while it is made.
///
/// Which callbacks exist is known up front (the module's exports for the guest's ABI version,
/// type-checked once per module), so [`has`](Self::has) never resolves anything.
pub struct CallbackHandles<H> {
    exported: CallbackSet,
    /// Per callback, 0 until its first call, then its handle's place in `handles` plus one.
    ready: [u8; Callback::COUNT],
    handles: Vec<H>,
}

impl<H> CallbackHandles<H> {
    /// Handles of the callbacks in `exported`, none resolved yet.
    pub fn new(exported: CallbackSet) -> Self {
        CallbackHandles { exported, ready: [0; Callback::COUNT], handles: Vec::new() }
    }

    /// Whether `callback` is exported ([`Instance::has`](super::Instance::has)).
    #[inline]
    pub fn has(&self, callback: Callback) -> bool {
        self.exported.contains(callback)
    }

    /// Every exported callback ([`Instance::exported`](super::Instance::exported)).
    pub fn exported(&self) -> CallbackSet {
        self.exported
    }

    /// Where `callback`'s handle is, once [`insert`](Self::insert) put it there: the call
    /// path's one check. `None` before its first call (or when it is not exported).
    #[inline]
    pub fn place(&self, callback: Callback) -> Option<usize> {
        match self.ready[callback as usize] {
            0 => None,
            n => Some(usize::from(n) - 1),
        }
    }

    /// The handle at `place` (from [`place`](Self::place) or [`insert`](Self::insert)).
    #[inline]
    pub fn at(&self, place: usize) -> &H {
        &self.handles[place]
    }

    /// Before `callback`'s first call: a callback that is not exported is a trap saying so;
    /// otherwise `resolve` makes its handle (a failure is the call's trap), which is kept, and
    /// its place is the answer.
    #[cold]
    pub fn insert(&mut self, callback: Callback, resolve: impl FnOnce() -> Result<H, Trap>) -> Result<usize, Trap> {
        if !self.exported.contains(callback) {
            return Err(Trap::guest(format!("`{callback}` is not exported by the module")));
        }
        if let Some(place) = self.place(callback) {
            return Ok(place);
        }
        self.handles.push(resolve()?);
        // At most one handle per callback, and fewer than 256 callbacks: the count fits a byte.
        self.ready[callback as usize] = self.handles.len() as u8;
        Ok(self.handles.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_resolved_once_on_first_use_and_only_if_exported() {
        let mut exported = CallbackSet::EMPTY;
        exported.insert(Callback::OnTick);
        exported.insert(Callback::OnDone);
        let mut handles = CallbackHandles::new(exported);
        assert!(handles.has(Callback::OnTick) && !handles.has(Callback::OnLog));
        assert_eq!(handles.exported(), exported);
        assert_eq!(handles.place(Callback::OnTick), None, "nothing resolved up front");
        let resolved = std::cell::Cell::new(0);
        let make = |value: &'static str| {
            let resolved = &resolved;
            move || {
                resolved.set(resolved.get() + 1);
                Ok(value)
            }
        };
        let tick = handles.insert(Callback::OnTick, make("tick")).unwrap();
        let done = handles.insert(Callback::OnDone, make("done")).unwrap();
        assert_eq!((handles.at(tick), handles.at(done)), (&"tick", &"done"));
        assert_eq!(handles.place(Callback::OnTick), Some(tick));
        assert_eq!(handles.insert(Callback::OnTick, make("again")), Ok(tick), "kept, not made again");
        assert_eq!(resolved.get(), 2);
        let missing = handles.insert(Callback::OnLog, make("log")).unwrap_err();
        assert_eq!(missing.message, "`proxy_on_log` is not exported by the module");
        assert_eq!((resolved.get(), handles.place(Callback::OnLog)), (2, None), "not resolved");

        let mut other = CallbackHandles::<&str>::new(exported);
        let e = other.insert(Callback::OnTick, || Err(Trap::guest("no such function".to_string()))).unwrap_err();
        assert_eq!(e.message, "no such function");
        assert_eq!(other.place(Callback::OnTick), None);
        let later = other.insert(Callback::OnTick, make("later")).unwrap();
        assert_eq!(other.at(later), &"later", "a failed resolution is tried again");
    }
}
