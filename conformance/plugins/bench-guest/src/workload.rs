//! What the host side and the guest of the benchmarks agree on. The benchmarks `include!` this
//! file: the request every stream workload sends and what the header-heavy workload does to it.

/// The request headers of every stream workload: 20 pairs, as a browser request through a
/// mesh might carry.
pub const REQUEST_HEADERS: [(&str, &str); 20] = [
    (":method", "GET"),
    (":path", "/api/v1/items?page=2&sort=desc"),
    (":authority", "shop.example.com"),
    (":scheme", "https"),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"),
    ("accept", "application/json, text/plain, */*"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "en-GB,en;q=0.7"),
    ("cookie", "session=4f1c2a9e0b7d4c1e8a3f; theme=dark"),
    ("x-request-id", "9b2f6a1c-3d4e-4f50-8a61-7b8c9d0e1f23"),
    ("x-forwarded-for", "203.0.113.7, 10.0.0.12"),
    ("x-forwarded-proto", "https"),
    ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
    ("x-b3-spanid", "e457b5a2e4d86bd1"),
    ("x-envoy-attempt-count", "1"),
    ("content-type", "application/json"),
    ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo"),
    ("cache-control", "no-cache"),
    ("x-debug", "0"),
    ("x-legacy", "remove-me"),
];

/// The headers the header-heavy workload adds.
pub const ADDED_HEADERS: [(&str, &str); 5] = [
    ("x-plugin-version", "1.4.2"),
    ("x-tenant", "acme"),
    ("x-route-class", "api"),
    ("x-auth-subject", "user-1234"),
    ("x-trace-sampled", "1"),
];

/// The headers the header-heavy workload removes.
pub const REMOVED_HEADERS: [&str; 2] = ["x-debug", "x-legacy"];

/// The header the single-lookup workload reads.
pub const LOOKUP_HEADER: &str = "x-request-id";

/// The upstream the callout workload calls.
pub const CALLOUT_UPSTREAM: &str = "bench-upstream";
