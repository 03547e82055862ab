//! Metrics: counters, gauges and histograms. The metric itself lives in
//! [`Services`](crate::Services) and is shared by every VM, keyed by type and name, as Envoy
//! keys stats by name. The ids a plugin holds are its VM's own, as Envoy gives them
//! (`Context::defineMetric`, `WasmBase::nextCounterMetricId` and friends): every
//! `proxy_define_metric` gives a new id, typed by its low two bits (counters 4, 8, ...;
//! gauges 5, 9, ...; histograms 6, 10, ...), and every id of a name reaches the same metric.

use abi::{MetricType, Status};

use crate::{HostCx, HostResult, VmHost};

/// `proxy_define_metric`: a new id for the metric (`metric_type`, `name`), which is made on
/// first use. The name is bytes (Envoy's stat names are; the embedder sees it as lossy
/// UTF-8). [`Status::BadArgument`] for an unknown type, after the memory checks.
pub fn proxy_define_metric(
    cx: &mut dyn HostCx,
    metric_type: u32,
    name_ptr: u64,
    name_size: u64,
    return_metric_id: u64,
) -> HostResult {
    let (mut mem, host) = cx.parts();
    let name = mem.read(name_ptr, name_size)?;
    mem.check(return_metric_id, 4)?;
    let kind = MetricType::from_raw(metric_type).ok_or(Status::BadArgument)?;
    let handle = host.services.define_metric(kind, name);
    let id = host.new_metric_id(kind, handle);
    mem.write_u32(return_metric_id, id)?;
    Ok(())
}

/// The handle of the shared metric behind this VM's id `id`; [`Status::NotFound`] if none.
fn metric(host: &VmHost, id: u32) -> Result<u32, Status> {
    host.metric_ids.get(&id).copied().ok_or(Status::NotFound)
}

/// `proxy_increment_metric`: adds `delta` to a counter (which must be > 0:
/// [`Status::BadArgument`] otherwise) or a gauge (any delta). By the id's type bits first, as
/// Envoy's `Context::incrementMetric`: a histogram's or type 3 is [`Status::BadArgument`],
/// known or not; an unknown counter or gauge id is [`Status::NotFound`].
pub fn proxy_increment_metric(cx: &mut dyn HostCx, metric_id: u32, delta: i64) -> HostResult {
    let host = cx.host();
    match MetricType::from_raw(metric_id & 3) {
        Some(MetricType::Counter | MetricType::Gauge) => {
            let handle = metric(host, metric_id)?;
            host.services.increment_metric(handle, delta)?;
            Ok(())
        }
        _ => Err(Status::BadArgument.into()),
    }
}

/// `proxy_record_metric`: a counter adds the value, a gauge is set to it, a histogram records
/// a sample. [`Status::NotFound`] for an unknown id of any type bits (Envoy's
/// `Context::recordMetric`).
pub fn proxy_record_metric(cx: &mut dyn HostCx, metric_id: u32, value: u64) -> HostResult {
    let host = cx.host();
    let handle = metric(host, metric_id)?;
    host.services.record_metric(handle, value)?;
    Ok(())
}

/// `proxy_get_metric`: a counter's or gauge's value as a `u64` (a gauge's two's-complement
/// bits). By the id's type bits first, as Envoy's `Context::getMetric`: a histogram's or type
/// 3 is [`Status::BadArgument`], known or not; an unknown counter or gauge id is
/// [`Status::NotFound`].
pub fn proxy_get_metric(cx: &mut dyn HostCx, metric_id: u32, return_value: u64) -> HostResult {
    let (mut mem, host) = cx.parts();
    mem.check(return_value, 8)?;
    let value = match MetricType::from_raw(metric_id & 3) {
        Some(MetricType::Counter | MetricType::Gauge) => host.services.get_metric(metric(host, metric_id)?)?,
        _ => return Err(Status::BadArgument.into()),
    };
    mem.write_u64(return_value, value)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use abi::{MetricType, Status};

    use crate::hostcalls::testing::{status, TestCx, MEM, OOB, RET_SCALAR};
    use crate::hostcalls::{proxy_define_metric, proxy_get_metric, proxy_increment_metric, proxy_record_metric};
    use crate::MetricValue;

    const NAME: u64 = 1000;

    fn define(cx: &mut TestCx, kind: MetricType, name: &str) -> u32 {
        let (p, n) = cx.put(NAME, name.as_bytes());
        assert_eq!(
            status(proxy_define_metric(cx, kind.raw(), p, n, RET_SCALAR)),
            Status::Ok
        );
        cx.u32_at(RET_SCALAR)
    }

    fn get(cx: &mut TestCx, id: u32) -> Result<u64, Status> {
        cx.put(RET_SCALAR, &[0xaa; 8]);
        match status(proxy_get_metric(cx, id, RET_SCALAR)) {
            Status::Ok => Ok(cx.u64_at(RET_SCALAR)),
            s => {
                assert_eq!(cx.u64_at(RET_SCALAR), 0xaaaa_aaaa_aaaa_aaaa, "written on {s}");
                Err(s)
            }
        }
    }

    #[test]
    fn define_gives_new_typed_ids_for_the_same_metric() {
        let mut cx = TestCx::new();
        let counter = define(&mut cx, MetricType::Counter, "requests");
        let gauge = define(&mut cx, MetricType::Gauge, "active");
        let histogram = define(&mut cx, MetricType::Histogram, "latency");
        // Envoy's ids: the type in the low two bits, a step of 4 per type.
        assert_eq!((counter, gauge, histogram), (4, 5, 6));
        // Defining a name again gives a new id for the same metric.
        let again = define(&mut cx, MetricType::Counter, "requests");
        assert_eq!(again, 8);
        assert_eq!(status(proxy_increment_metric(&mut cx, again, 2)), Status::Ok);
        assert_eq!(status(proxy_increment_metric(&mut cx, counter, 3)), Status::Ok);
        assert_eq!(get(&mut cx, counter), Ok(5));
        assert_eq!(get(&mut cx, again), Ok(5));
        let names: Vec<String> = cx.host.services.metrics().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["requests", "active", "latency"]);
        // A name is bytes: not UTF-8 is fine (the embedder sees it lossily).
        let (p, n) = cx.put(NAME, &[0xe2, 0x82]);
        assert_eq!(status(proxy_define_metric(&mut cx, 0, p, n, RET_SCALAR)), Status::Ok);
        assert_eq!(cx.u32_at(RET_SCALAR), 12);
    }

    #[test]
    fn define_refusals_define_nothing() {
        let cases = [
            ("unknown type", 3, (NAME, 1), RET_SCALAR, Status::BadArgument),
            (
                "unknown type with bad memory (memory first, as exports.cc)",
                u32::MAX,
                (OOB, 1),
                RET_SCALAR,
                Status::InvalidMemoryAccess,
            ),
            (
                "name out of bounds",
                0,
                (OOB, 1),
                RET_SCALAR,
                Status::InvalidMemoryAccess,
            ),
            (
                "name length overflows",
                1,
                (2, u64::MAX - 1),
                RET_SCALAR,
                Status::InvalidMemoryAccess,
            ),
            (
                "return id out of bounds",
                2,
                (NAME, 1),
                MEM - 1,
                Status::InvalidMemoryAccess,
            ),
            (
                "return id overflows",
                0,
                (NAME, 1),
                u64::MAX,
                Status::InvalidMemoryAccess,
            ),
        ];
        for (name, kind, (p, n), ret, expected) in cases {
            let mut cx = TestCx::new();
            cx.put(NAME, b"m");
            cx.put(RET_SCALAR, &[0xaa; 4]);
            assert_eq!(
                status(proxy_define_metric(&mut cx, kind, p, n, ret)),
                expected,
                "{name}"
            );
            assert!(cx.host.services.metrics().is_empty(), "{name}");
            assert_eq!(cx.u32_at(RET_SCALAR), 0xaaaa_aaaa, "{name}");
        }
    }

    #[test]
    fn increment_record_and_get_follow_the_type() {
        let mut cx = TestCx::new();
        let c = define(&mut cx, MetricType::Counter, "c");
        let g = define(&mut cx, MetricType::Gauge, "g");
        let h = define(&mut cx, MetricType::Histogram, "h");

        assert_eq!(status(proxy_increment_metric(&mut cx, c, 5)), Status::Ok);
        assert_eq!(status(proxy_increment_metric(&mut cx, c, 2)), Status::Ok);
        assert_eq!(status(proxy_record_metric(&mut cx, c, 10)), Status::Ok);
        assert_eq!(get(&mut cx, c), Ok(17));

        assert_eq!(status(proxy_increment_metric(&mut cx, g, 4)), Status::Ok);
        assert_eq!(status(proxy_increment_metric(&mut cx, g, -7)), Status::Ok);
        assert_eq!(get(&mut cx, g), Ok(-3i64 as u64));
        assert_eq!(status(proxy_record_metric(&mut cx, g, 40)), Status::Ok);
        assert_eq!(get(&mut cx, g), Ok(40));

        assert_eq!(status(proxy_record_metric(&mut cx, h, 12)), Status::Ok);
        assert_eq!(status(proxy_record_metric(&mut cx, h, 3)), Status::Ok);

        let metrics = cx.host.services.metrics();
        assert_eq!(
            metrics,
            vec![
                ("c".to_string(), MetricValue::Counter(17)),
                ("g".to_string(), MetricValue::Gauge(40)),
                ("h".to_string(), MetricValue::Histogram(vec![12, 3])),
            ]
        );
    }

    #[test]
    fn metric_refusals_change_nothing() {
        let mut cx = TestCx::new();
        let c = define(&mut cx, MetricType::Counter, "c");
        let g = define(&mut cx, MetricType::Gauge, "g");
        let h = define(&mut cx, MetricType::Histogram, "h");
        // Unknown counter and gauge ids: NOT_FOUND everywhere.
        let unknown = [c + 4 * 100, g + 4 * 100, 0, 1];

        let increments = [
            (c, 0, Status::BadArgument),
            (c, -1, Status::BadArgument),
            (h, 1, Status::BadArgument),
        ];
        for (id, delta, expected) in increments {
            assert_eq!(
                status(proxy_increment_metric(&mut cx, id, delta)),
                expected,
                "id {id} delta {delta}"
            );
        }
        for id in unknown {
            assert_eq!(
                status(proxy_increment_metric(&mut cx, id, 1)),
                Status::NotFound,
                "id {id}"
            );
            assert_eq!(status(proxy_record_metric(&mut cx, id, 1)), Status::NotFound, "id {id}");
            assert_eq!(get(&mut cx, id), Err(Status::NotFound), "id {id}");
        }
        // Histogram-type and type-3 ids, known or not: increment and get look at the type bits
        // first (BAD_ARGUMENT); record finds no such metric (NOT_FOUND) unless it is one.
        for id in [h + 4 * 100, c | 3, 0xffff_ffff] {
            assert_eq!(status(proxy_increment_metric(&mut cx, id, 1)), Status::BadArgument, "id {id}");
            assert_eq!(status(proxy_record_metric(&mut cx, id, 1)), Status::NotFound, "id {id}");
            assert_eq!(get(&mut cx, id), Err(Status::BadArgument), "id {id}");
        }
        assert_eq!(get(&mut cx, h), Err(Status::BadArgument));
        assert_eq!(
            status(proxy_get_metric(&mut cx, c, MEM - 7)),
            Status::InvalidMemoryAccess
        );
        assert_eq!(status(proxy_get_metric(&mut cx, c, OOB)), Status::InvalidMemoryAccess);
        assert_eq!(
            status(proxy_get_metric(&mut cx, c, u64::MAX - 3)),
            Status::InvalidMemoryAccess
        );
        assert_eq!(
            cx.host.services.metrics(),
            vec![
                ("c".to_string(), MetricValue::Counter(0)),
                ("g".to_string(), MetricValue::Gauge(0)),
                ("h".to_string(), MetricValue::Histogram(vec![])),
            ]
        );
    }
}
