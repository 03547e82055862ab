//! Metrics: counters, gauges and histograms, kept in [`Services`](crate::Services) and shared
//! by every VM. Defining a name again reaches the same metric, as Envoy keys stats by name.

use abi::{MetricType, Status};

use super::callouts::guest_text;
use crate::{HostCx, HostResult};

/// `proxy_define_metric`: the id of the metric (`metric_type`, `name`), made on first use.
/// [`Status::BadArgument`] for an unknown type or a name that is not UTF-8.
pub fn proxy_define_metric(
    cx: &mut dyn HostCx,
    metric_type: u32,
    name_ptr: u64,
    name_size: u64,
    return_metric_id: u64,
) -> HostResult {
    let kind = MetricType::from_raw(metric_type).ok_or(Status::BadArgument)?;
    let (mut mem, host) = cx.parts();
    let name = mem.read(name_ptr, name_size)?;
    mem.check(return_metric_id, 4)?;
    let name = guest_text(name)?;
    let id = host.services.define_metric(kind, &name);
    mem.write_u32(return_metric_id, id)?;
    Ok(())
}

/// `proxy_increment_metric`: adds `delta` to a counter (which must be > 0) or a gauge.
/// [`Status::NotFound`] for an unknown id; [`Status::BadArgument`] for a delta <= 0 on a
/// counter or any increment of a histogram.
pub fn proxy_increment_metric(cx: &mut dyn HostCx, metric_id: u32, delta: i64) -> HostResult {
    cx.host().services.increment_metric(metric_id, delta)?;
    Ok(())
}

/// `proxy_record_metric`: a counter adds the value, a gauge is set to it, a histogram records
/// a sample. [`Status::NotFound`] for an unknown id.
pub fn proxy_record_metric(cx: &mut dyn HostCx, metric_id: u32, value: u64) -> HostResult {
    cx.host().services.record_metric(metric_id, value)?;
    Ok(())
}

/// `proxy_get_metric`: a counter's or gauge's value as a `u64` (a gauge's two's-complement
/// bits). [`Status::NotFound`] for an unknown id, [`Status::BadArgument`] for a histogram.
pub fn proxy_get_metric(cx: &mut dyn HostCx, metric_id: u32, return_value: u64) -> HostResult {
    let (mut mem, host) = cx.parts();
    mem.check(return_value, 8)?;
    let value = host.services.get_metric(metric_id)?;
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
    fn define_gives_typed_ids_and_reuses_names() {
        let mut cx = TestCx::new();
        let counter = define(&mut cx, MetricType::Counter, "requests");
        let gauge = define(&mut cx, MetricType::Gauge, "active");
        let histogram = define(&mut cx, MetricType::Histogram, "latency");
        // The type sits in the low two bits, as in the C++ host.
        assert_eq!((counter & 3, gauge & 3, histogram & 3), (0, 1, 2));
        assert_eq!(define(&mut cx, MetricType::Counter, "requests"), counter);
        assert_eq!(define(&mut cx, MetricType::Gauge, "active"), gauge);
        let names: Vec<String> = cx.host.services.metrics().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["requests", "active", "latency"]);
    }

    #[test]
    fn define_refusals_define_nothing() {
        let cases = [
            ("unknown type", 3, (NAME, 1), RET_SCALAR, Status::BadArgument),
            (
                "unknown type with bad memory",
                u32::MAX,
                (OOB, 1),
                RET_SCALAR,
                Status::BadArgument,
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
            ("name not UTF-8", 0, (NAME + 8, 2), RET_SCALAR, Status::BadArgument),
        ];
        for (name, kind, (p, n), ret, expected) in cases {
            let mut cx = TestCx::new();
            cx.put(NAME, b"m");
            cx.put(NAME + 8, &[0xe2, 0x82]);
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
        let unknown = [c + 4 * 100, c | 3, g + 1, 0xffff_ffff];

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
