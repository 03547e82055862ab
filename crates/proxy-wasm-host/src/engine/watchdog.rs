//! The CPU-deadline watchdog: one thread per process that interrupts calls running past their
//! deadline, through the engine's [`Interrupt`]. Written once here; an engine supplies only its
//! `Interrupt`.
//!
//! Each VM with a deadline gets a [`DeadlineSlot`] once ([`Watchdog::slot`]); each call arms it
//! ([`DeadlineSlot::arm`]) and disarms it when it returns ([`Armed::disarm`], which says whether
//! the watchdog stopped the call). Arming costs a clock read, a store to the slot and a load of
//! a flag the thread rarely writes; it takes no lock and, while calls come, wakes no thread
//! (waking the thread on every call cost more than the call). The thread wakes at the earliest
//! deadline or every [`Watchdog::tick`], whichever comes first; after [`IDLE_TICKS`] ticks with no
//! call armed it parks until a call is armed.
//!
//! An interrupt never reaches a call it was not meant for: the watchdog claims an overdue call
//! before interrupting it, and arming or disarming waits for an interrupt in flight to land. An
//! interrupt that lands after its call returned stays in the engine's flag until the next call
//! starts, and engines clear their flag when a call starts ([`Instance::call`](super::Instance)).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::Interrupt;
use crate::Trap;

/// A slot's state: no call armed.
const IDLE: u64 = u64::MAX;
/// The watchdog is interrupting the armed call.
const FIRING: u64 = u64::MAX - 1;
/// The watchdog interrupted the armed call.
const FIRED: u64 = u64::MAX - 2;
/// The largest deadline a slot can hold (anything later is never reached).
const LATEST: u64 = u64::MAX - 3;
/// Ticks in a row with no call armed after which the thread parks until the next call.
pub const IDLE_TICKS: u32 = 100;

/// Interrupts calls that run past their deadline. Cheap to clone; every clone is the same
/// watchdog. Its thread starts with the first armed call and ends when the last clone and slot
/// are dropped.
#[derive(Clone)]
pub struct Watchdog {
    shared: Arc<Shared>,
}

struct Shared {
    /// The longest the thread sleeps while calls are armed.
    tick: Duration,
    /// Deadlines are nanoseconds since this instant.
    origin: Instant,
    /// Every live slot.
    slots: Mutex<Vec<Weak<SlotState>>>,
    /// The thread is parked until a call is armed: `arm` must wake it.
    sleeping: AtomicBool,
    /// The thread, once started, or why it could not be.
    thread: OnceLock<Result<Thread, String>>,
}

/// One VM's place in the watchdog: its interrupt and the deadline of its running call.
struct SlotState {
    /// [`IDLE`], the deadline of the armed call (ns since the origin), [`FIRING`] or [`FIRED`].
    state: AtomicU64,
    interrupt: Arc<dyn Interrupt>,
}

impl Watchdog {
    /// A watchdog whose thread sleeps at most `tick` between checks while a call is armed: the
    /// deadline is met within about one `tick` at worst, and usually at once.
    pub fn new(tick: Duration) -> Self {
        let shared = Shared {
            tick,
            origin: Instant::now(),
            slots: Mutex::new(Vec::new()),
            // The thread starts awake, with the first armed call (`Watchdog::thread`).
            sleeping: AtomicBool::new(false),
            thread: OnceLock::new(),
        };
        Watchdog { shared: Arc::new(shared) }
    }

    /// The process's watchdog (10 ms tick), which every [`Vm`](crate::Vm) uses.
    pub fn global() -> &'static Watchdog {
        static GLOBAL: OnceLock<Watchdog> = OnceLock::new();
        GLOBAL.get_or_init(|| Watchdog::new(Duration::from_millis(10)))
    }

    /// The longest the thread sleeps while calls are armed.
    pub fn tick(&self) -> Duration {
        self.shared.tick
    }

    /// A slot for one VM whose calls may run at most `deadline`, stopped through `interrupt`.
    /// Make it once per VM; arm it for each call.
    pub fn slot(&self, interrupt: Arc<dyn Interrupt>, deadline: Duration) -> DeadlineSlot {
        let state = Arc::new(SlotState { state: AtomicU64::new(IDLE), interrupt });
        let mut slots = lock(&self.shared.slots);
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(&state));
        drop(slots);
        let deadline_ns = u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX);
        DeadlineSlot { state, deadline, deadline_ns, watchdog: self.shared.clone() }
    }

    /// Starts the thread if it has not started; `Err` names why it could not.
    fn thread(shared: &Arc<Shared>) -> Result<&Thread, Trap> {
        let thread = shared.thread.get_or_init(|| {
            let weak = Arc::downgrade(shared);
            std::thread::Builder::new()
                .name("proxy-wasm-watchdog".into())
                .spawn(move || run(weak))
                .map(|handle| handle.thread().clone())
                .map_err(|e| e.to_string())
        });
        thread.as_ref().map_err(|e| Trap::deadline(format!("cannot enforce the call deadline: no watchdog thread: {e}")))
    }
}

/// One VM's deadline: [`arm`](Self::arm) it around each call. Used by one thread at a time.
pub struct DeadlineSlot {
    state: Arc<SlotState>,
    deadline: Duration,
    deadline_ns: u64,
    watchdog: Arc<Shared>,
}

impl DeadlineSlot {
    /// The deadline of each call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Arms the deadline for a call starting now. The call must be disarmed (dropping the guard
    /// does it) before the slot is armed again.
    pub fn arm(&self) -> Result<Armed<'_>, Trap> {
        let thread = Watchdog::thread(&self.watchdog)?;
        let now = nanos_since(self.watchdog.origin);
        let due = now.saturating_add(self.deadline_ns).min(LATEST);
        // Wait out an interrupt of the previous call that is landing now; then no interrupt can
        // be under way, and the watchdog only ever claims a slot holding a deadline.
        let mut current = self.state.state.load(Ordering::Acquire);
        while current == FIRING {
            std::hint::spin_loop();
            current = self.state.state.load(Ordering::Acquire);
        }
        // SeqCst, paired with the thread's going to sleep (`run`): either this sees it asleep
        // and wakes it, or its last look at the slots before sleeping sees this deadline.
        self.state.state.store(due, Ordering::SeqCst);
        if self.watchdog.sleeping.load(Ordering::SeqCst) {
            thread.unpark();
        }
        Ok(Armed { slot: self, done: false })
    }
}

/// An armed deadline: the call is watched until [`disarm`](Self::disarm) (or drop).
pub struct Armed<'a> {
    slot: &'a DeadlineSlot,
    done: bool,
}

impl Armed<'_> {
    /// Stops watching the call; `true` when the watchdog interrupted it for running past its
    /// deadline (the engine's trap is then a deadline trap).
    pub fn disarm(mut self) -> bool {
        self.done = true;
        self.release()
    }

    fn release(&self) -> bool {
        let state = &self.slot.state.state;
        loop {
            let current = state.load(Ordering::Acquire);
            if current == FIRING {
                std::hint::spin_loop();
                continue;
            }
            if state.compare_exchange(current, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return current == FIRED;
            }
        }
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.release();
        }
    }
}

/// Nanoseconds from `origin` to now.
fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(LATEST)
}

/// A lock whose data is valid at every point, so a poisoned one is usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The watchdog thread: interrupts the calls past their deadline and sleeps until the earliest
/// remaining one, at most a tick; after [`IDLE_TICKS`] ticks with no call armed, parks until
/// `arm` wakes it. Ends when the watchdog is gone.
fn run(watchdog: Weak<Shared>) {
    let mut idle = 0u32;
    loop {
        let Some(shared) = watchdog.upgrade() else { return };
        let tick = u64::try_from(shared.tick.as_nanos()).unwrap_or(LATEST);
        let (next, armed) = check(&shared, tick);
        idle = if armed { 0 } else { idle.saturating_add(1) };
        if idle >= IDLE_TICKS {
            // Going to sleep: say so, then look once more (SeqCst, paired with `arm`), so that a
            // call armed meanwhile is either seen here or wakes the thread.
            shared.sleeping.store(true, Ordering::SeqCst);
            if check(&shared, tick).1 {
                shared.sleeping.store(false, Ordering::SeqCst);
                idle = 0;
                continue;
            }
            drop(shared);
            // A wake-up between the look and the park is not lost: the token makes `park`
            // return at once.
            std::thread::park();
            if let Some(shared) = watchdog.upgrade() {
                shared.sleeping.store(false, Ordering::SeqCst);
            }
            idle = 0;
            continue;
        }
        let sleep = Duration::from_nanos(next.saturating_sub(nanos_since(shared.origin)));
        drop(shared);
        if !sleep.is_zero() {
            std::thread::park_timeout(sleep);
        }
    }
}

/// One look at every slot: interrupts the overdue calls; answers when to look next (the
/// earliest remaining deadline, at most a tick from now, in ns since the origin) and whether any
/// call is armed.
fn check(shared: &Shared, tick: u64) -> (u64, bool) {
    let now = nanos_since(shared.origin);
    let mut next = now.saturating_add(tick);
    let mut armed = false;
    for slot in lock(&shared.slots).iter().filter_map(Weak::upgrade) {
        let due = slot.state.load(Ordering::SeqCst);
        if due > LATEST {
            continue;
        }
        armed = true;
        if due > now {
            next = next.min(due);
            continue;
        }
        // Claim the call before interrupting it, so that it cannot end and a later call start in
        // between: `arm` and `disarm` wait while the slot is FIRING.
        if slot.state.compare_exchange(due, FIRING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            slot.interrupt.interrupt();
            slot.state.store(FIRED, Ordering::Release);
        }
    }
    (next, armed)
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Wake the thread so that it sees the watchdog is gone and ends.
        if let Some(Ok(thread)) = self.thread.get() {
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[derive(Default)]
    struct Count(AtomicU32);

    impl Interrupt for Count {
        fn interrupt(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn an_overdue_call_is_interrupted_once_and_reported() {
        let watchdog = Watchdog::new(Duration::from_millis(5));
        let count = Arc::new(Count::default());
        let slot = watchdog.slot(count.clone(), Duration::from_millis(20));
        let armed = slot.arm().unwrap();
        wait_for("the interrupt", || count.0.load(Ordering::SeqCst) > 0);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "one interrupt per overdue call");
        assert!(armed.disarm(), "the disarm reports the watchdog stopped the call");
    }

    #[test]
    fn a_call_that_returns_in_time_is_not_interrupted() {
        let watchdog = Watchdog::new(Duration::from_millis(1));
        let count = Arc::new(Count::default());
        let slot = watchdog.slot(count.clone(), Duration::from_secs(3600));
        for _ in 0..100 {
            assert!(!slot.arm().unwrap().disarm());
        }
        // Dropping the guard disarms too.
        drop(slot.arm().unwrap());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert_eq!(slot.state.state.load(Ordering::SeqCst), IDLE, "disarmed");
    }

    #[test]
    fn each_slot_has_its_own_deadline() {
        let watchdog = Watchdog::new(Duration::from_millis(5));
        let (short, long) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let short_slot = watchdog.slot(short.clone(), Duration::from_millis(10));
        let long_slot = watchdog.slot(long.clone(), Duration::from_secs(3600));
        let a = short_slot.arm().unwrap();
        let b = long_slot.arm().unwrap();
        wait_for("the short deadline", || short.0.load(Ordering::SeqCst) > 0);
        assert_eq!(long.0.load(Ordering::SeqCst), 0);
        assert!(a.disarm());
        assert!(!b.disarm());
    }

    #[test]
    fn a_call_armed_after_the_thread_went_to_sleep_is_still_watched() {
        let watchdog = Watchdog::new(Duration::from_millis(1));
        let count = Arc::new(Count::default());
        let slot = watchdog.slot(count.clone(), Duration::from_millis(5));
        drop(slot.arm().unwrap());
        // The thread idles for IDLE_TICKS ticks, then parks until a call is armed.
        wait_for("the thread to sleep", || watchdog.shared.sleeping.load(Ordering::SeqCst));
        let armed = slot.arm().unwrap();
        wait_for("the interrupt", || count.0.load(Ordering::SeqCst) > 0);
        assert!(armed.disarm());
    }

    #[test]
    fn a_dropped_slot_is_forgotten() {
        let watchdog = Watchdog::new(Duration::from_millis(5));
        let slot = watchdog.slot(Arc::new(Count::default()), Duration::from_secs(1));
        drop(slot);
        let _other = watchdog.slot(Arc::new(Count::default()), Duration::from_secs(1));
        assert_eq!(lock(&watchdog.shared.slots).len(), 1);
    }
}
