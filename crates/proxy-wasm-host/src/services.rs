//! Services shared by every VM of a [`PluginHost`](crate::PluginHost): shared data with CAS,
//! shared queues, metrics, and the foreign functions the embedder registers.
//!
//! Shared data and queues are scoped by VM id, as in Envoy: only VMs with the same `vm_id` see
//! the same keys, though any VM may resolve and enqueue onto any queue by (vm_id, name).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use abi::{MetricType, Status};

/// Locks a mutex, recovering the data if a thread panicked while holding it: the data here
/// stays consistent across every operation, so a poisoned lock carries no torn state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A foreign function offered to plugins through `proxy_call_foreign_function`: given who calls
/// and the arguments, its result bytes, or the status the plugin gets.
pub type ForeignFunction = Arc<dyn Fn(&ForeignCx<'_>, &[u8]) -> Result<Vec<u8>, Status> + Send + Sync>;

/// Who calls a [`ForeignFunction`].
#[derive(Clone, Copy, Debug)]
pub struct ForeignCx<'a> {
    /// The plugin whose code calls (none before its root context exists).
    pub plugin: Option<&'a crate::PluginInfo>,
    /// The effective context (a root or stream context id).
    pub context_id: u32,
    /// Whether that context is a stream (an HTTP stream or TCP connection), not a root context.
    pub stream: bool,
    /// The VM.
    pub vm: crate::VmToken,
}

/// Notifications for one VM, delivered on that VM's own thread when its embedder calls
/// [`Vm::deliver`](crate::Vm::deliver).
#[derive(Default)]
pub struct Mailbox {
    pending: Mutex<VecDeque<Notification>>,
    waker: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

/// Something waiting to be delivered to a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notification {
    /// An item was enqueued on a queue this VM registered: call `proxy_on_queue_ready`.
    QueueReady {
        /// The root context that registered the queue.
        context_id: u32,
        /// The queue.
        queue_id: u32,
    },
}

impl Mailbox {
    /// Posts a notification and wakes the VM's event loop.
    pub fn post(&self, n: Notification) {
        lock(&self.pending).push_back(n);
        let waker = lock(&self.waker).clone();
        if let Some(w) = waker {
            w();
        }
    }

    /// Takes the oldest pending notification.
    pub fn take(&self) -> Option<Notification> {
        lock(&self.pending).pop_front()
    }

    /// Whether anything is pending.
    pub fn is_empty(&self) -> bool {
        lock(&self.pending).is_empty()
    }

    /// Sets the function called (on the posting thread) whenever something is posted; the
    /// embedder uses it to wake the VM's event loop.
    pub fn set_waker(&self, waker: Arc<dyn Fn() + Send + Sync>) {
        *lock(&self.waker) = Some(waker);
    }
}

struct Queue {
    items: VecDeque<Vec<u8>>,
    owner: Weak<Mailbox>,
    owner_context: u32,
}

/// The value of a metric, as the embedder reads it.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(i64),
    /// A histogram's samples, in the order recorded.
    Histogram(Vec<u64>),
}

struct Metric {
    name: String,
    kind: MetricType,
    value: AtomicI64,
    samples: Mutex<Vec<u64>>,
}

/// Shared data: (vm_id, key) -> (value, cas).
type SharedData = HashMap<(String, Vec<u8>), (Vec<u8>, u32)>;

/// Shared data, queues, metrics and foreign functions. One per [`PluginHost`](crate::PluginHost).
#[derive(Default)]
pub struct Services {
    shared: Mutex<SharedData>,
    cas: AtomicU32,
    queues: Mutex<QueueTable>,
    metrics: RwLock<MetricTable>,
    foreign: RwLock<HashMap<String, ForeignFunction>>,
    next_vm: AtomicU64,
    security: crate::SecurityCounters,
}

#[derive(Default)]
struct QueueTable {
    by_name: HashMap<(String, String), u32>,
    queues: HashMap<u32, Queue>,
    next: u32,
}

#[derive(Default)]
struct MetricTable {
    by_name: HashMap<(MetricType, String), u32>,
    metrics: Vec<Arc<Metric>>,
}

impl Services {
    /// Services with no data yet, and Envoy's built-in foreign functions that need no proxy
    /// (`compress`, `uncompress`, `verify_signature`: see [`crate::foreign`]).
    pub fn new() -> Arc<Self> {
        let services = Services::default();
        crate::foreign::register_builtins(&services);
        Arc::new(services)
    }

    /// What the security policy refused so far, in every VM of these services.
    pub fn security(&self) -> &crate::SecurityCounters {
        &self.security
    }

    /// A fresh token for a new VM.
    pub(crate) fn next_vm_token(&self) -> crate::VmToken {
        crate::VmToken(self.next_vm.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn next_cas(&self) -> u32 {
        loop {
            let c = self.cas.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if c != 0 {
                return c;
            }
        }
    }

    /// `proxy_get_shared_data`: the value and its CAS, or `NotFound`.
    pub fn get_shared_data(&self, vm_id: &str, key: &[u8]) -> Result<(Vec<u8>, u32), Status> {
        lock(&self.shared)
            .get(&(vm_id.to_string(), key.to_vec()))
            .cloned()
            .ok_or(Status::NotFound)
    }

    /// `proxy_set_shared_data`: writes when `cas` is 0 or equals the current CAS (or the key is
    /// new, as the C++ host does), else `CasMismatch`. Every write gives a new CAS.
    pub fn set_shared_data(&self, vm_id: &str, key: &[u8], value: &[u8], cas: u32) -> Result<(), Status> {
        let mut map = lock(&self.shared);
        let k = (vm_id.to_string(), key.to_vec());
        if let Some((_, current)) = map.get(&k) {
            if cas != 0 && cas != *current {
                return Err(Status::CasMismatch);
            }
        }
        let next = self.next_cas();
        map.insert(k, (value.to_vec(), next));
        Ok(())
    }

    /// `proxy_register_shared_queue`: creates or reopens the queue (vm_id, name). The latest
    /// registrant owns it and receives `proxy_on_queue_ready` on `context_id`.
    pub fn register_queue(&self, vm_id: &str, name: &str, owner: &Arc<Mailbox>, context_id: u32) -> u32 {
        let mut t = lock(&self.queues);
        let key = (vm_id.to_string(), name.to_string());
        let id = match t.by_name.get(&key) {
            Some(id) => *id,
            None => {
                t.next += 1;
                let id = t.next;
                t.by_name.insert(key, id);
                t.queues.insert(id, Queue { items: VecDeque::new(), owner: Weak::new(), owner_context: 0 });
                id
            }
        };
        if let Some(q) = t.queues.get_mut(&id) {
            q.owner = Arc::downgrade(owner);
            q.owner_context = context_id;
        }
        id
    }

    /// `proxy_resolve_shared_queue`: the id of (vm_id, name), or `NotFound`.
    pub fn resolve_queue(&self, vm_id: &str, name: &str) -> Result<u32, Status> {
        lock(&self.queues)
            .by_name
            .get(&(vm_id.to_string(), name.to_string()))
            .copied()
            .ok_or(Status::NotFound)
    }

    /// `proxy_enqueue_shared_queue`: appends and notifies the owner, or `NotFound`.
    pub fn enqueue(&self, queue_id: u32, value: &[u8]) -> Result<(), Status> {
        let (owner, context_id) = {
            let mut t = lock(&self.queues);
            let q = t.queues.get_mut(&queue_id).ok_or(Status::NotFound)?;
            q.items.push_back(value.to_vec());
            (q.owner.upgrade(), q.owner_context)
        };
        if let Some(owner) = owner {
            owner.post(Notification::QueueReady { context_id, queue_id });
        }
        Ok(())
    }

    /// `proxy_dequeue_shared_queue`: the oldest item; `NotFound` for an unknown queue, `Empty`
    /// when nothing is queued.
    pub fn dequeue(&self, queue_id: u32) -> Result<Vec<u8>, Status> {
        let mut t = lock(&self.queues);
        let q = t.queues.get_mut(&queue_id).ok_or(Status::NotFound)?;
        q.items.pop_front().ok_or(Status::Empty)
    }

    /// `proxy_define_metric`: the id of (type, name), made on first use. Ids carry the type in
    /// their low two bits, as in the C++ host.
    pub fn define_metric(&self, kind: MetricType, name: &str) -> u32 {
        if let Some(id) = self.metrics.read().unwrap_or_else(|e| e.into_inner()).by_name.get(&(kind, name.to_string())) {
            return *id;
        }
        let mut t = self.metrics.write().unwrap_or_else(|e| e.into_inner());
        let key = (kind, name.to_string());
        if let Some(id) = t.by_name.get(&key) {
            return *id;
        }
        let id = ((t.metrics.len() as u32) << 2) | kind.raw();
        t.metrics.push(Arc::new(Metric {
            name: name.to_string(),
            kind,
            value: AtomicI64::new(0),
            samples: Mutex::new(Vec::new()),
        }));
        t.by_name.insert(key, id);
        id
    }

    fn metric(&self, id: u32) -> Result<Arc<Metric>, Status> {
        let t = self.metrics.read().unwrap_or_else(|e| e.into_inner());
        let m = t.metrics.get((id >> 2) as usize).ok_or(Status::NotFound)?;
        if m.kind.raw() != id & 3 {
            return Err(Status::NotFound);
        }
        Ok(m.clone())
    }

    /// `proxy_increment_metric`: `NotFound` for an unknown id; `BadArgument` for a delta <= 0
    /// on a counter or any increment of a histogram.
    pub fn increment_metric(&self, id: u32, delta: i64) -> Result<(), Status> {
        let m = self.metric(id)?;
        match m.kind {
            MetricType::Counter if delta <= 0 => Err(Status::BadArgument),
            MetricType::Counter | MetricType::Gauge => {
                m.value.fetch_add(delta, Ordering::Relaxed);
                Ok(())
            }
            MetricType::Histogram => Err(Status::BadArgument),
        }
    }

    /// `proxy_record_metric`: a counter adds the value, a gauge is set to it, a histogram
    /// records a sample. `NotFound` for an unknown id.
    pub fn record_metric(&self, id: u32, value: u64) -> Result<(), Status> {
        let m = self.metric(id)?;
        match m.kind {
            MetricType::Counter => {
                m.value.fetch_add(value as i64, Ordering::Relaxed);
            }
            MetricType::Gauge => m.value.store(value as i64, Ordering::Relaxed),
            MetricType::Histogram => lock(&m.samples).push(value),
        }
        Ok(())
    }

    /// `proxy_get_metric`: a counter's or gauge's value (a gauge's two's-complement bits);
    /// `NotFound` for an unknown id, `BadArgument` for a histogram.
    pub fn get_metric(&self, id: u32) -> Result<u64, Status> {
        let m = self.metric(id)?;
        match m.kind {
            MetricType::Histogram => Err(Status::BadArgument),
            _ => Ok(m.value.load(Ordering::Relaxed) as u64),
        }
    }

    /// Every metric by name, for the embedder's stats.
    pub fn metrics(&self) -> Vec<(String, MetricValue)> {
        let t = self.metrics.read().unwrap_or_else(|e| e.into_inner());
        t.metrics
            .iter()
            .map(|m| {
                let v = match m.kind {
                    MetricType::Counter => MetricValue::Counter(m.value.load(Ordering::Relaxed) as u64),
                    MetricType::Gauge => MetricValue::Gauge(m.value.load(Ordering::Relaxed)),
                    MetricType::Histogram => MetricValue::Histogram(lock(&m.samples).clone()),
                };
                (m.name.clone(), v)
            })
            .collect()
    }

    /// Registers a foreign function under `name`, replacing any earlier one.
    pub fn register_foreign_function(&self, name: &str, f: ForeignFunction) {
        self.foreign.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), f);
    }

    /// The foreign function called `name`.
    pub fn foreign_function(&self, name: &str) -> Option<ForeignFunction> {
        self.foreign.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }
}
