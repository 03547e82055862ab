//! One line on stderr when a native plugin aborts the process.
//!
//! The Null VM runs native plugins in the process; one built with `panic = "abort"` that panics
//! calls `abort()`, and the process dies of SIGABRT. The transcript streams as it goes, so what
//! happened until then is on the screen; this adds the line saying why it stops there.

/// What the handler writes.
const MESSAGE: &[u8] = b"\npwhost: a native plugin aborted the process (SIGABRT); the transcript above shows what happened until then\n";

/// Installs the SIGABRT handler (once; later calls do nothing). The handler writes
/// [`MESSAGE`] to stderr and returns; it resets itself to the default action first, so the
/// abort then ends the process as it would have.
pub fn note_native_aborts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed `sigaction` is a valid value (no flags, empty mask, null handler)
        // before its fields are set; `handler` has the signature `sa_handler` expects and does
        // only async-signal-safe work (`write`). `sigaction` is given valid pointers.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGABRT, &action, std::ptr::null_mut());
        }
    });
}

extern "C" fn handler(_signal: libc::c_int) {
    // SAFETY: `write` is async-signal-safe; the buffer is a static of the given length.
    unsafe {
        libc::write(libc::STDERR_FILENO, MESSAGE.as_ptr().cast(), MESSAGE.len());
    }
}
