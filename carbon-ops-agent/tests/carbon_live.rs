//! Live providers against a local HTTP server on loopback serving the providers' documented
//! response formats: span-honouring URLs, the token header, caching, and fallback to the
//! bundled table on errors and timeouts.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carbon_ops::carbon::live::{
    LiveCache, LiveConfig, LiveError, LiveSeries, PlainHttp, Provider, fetch_series,
};
use carbon_ops::carbon::time::Timestamp;
use carbon_ops::carbon::{EstimateRequest, estimate_request_with_live};

/// Request lines and headers the server saw.
type RequestLog = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// Serves `n` connections: each gets `respond(request_line, headers)` as the raw response
/// (None: hold the connection open without answering). Returns the base URL and the log.
fn serve(
    n: usize,
    respond: impl Fn(&str, &[String]) -> Option<String> + Send + 'static,
) -> (String, RequestLog) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            reader.read_line(&mut line).expect("request line");
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).expect("header");
                if h.trim().is_empty() {
                    break;
                }
                headers.push(h.trim().to_owned());
            }
            let reply = respond(line.trim(), &headers);
            log2.lock()
                .expect("log")
                .push((line.trim().to_owned(), headers));
            match reply {
                Some(r) => {
                    let _ = stream.write_all(r.as_bytes());
                }
                None => std::thread::sleep(Duration::from_millis(1500)),
            }
        }
    });
    (format!("http://{addr}"), log)
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

const EM_PAST_RANGE: &str = r#"{"zone":"DE","data":[
 {"zone":"DE","carbonIntensity":300,"datetime":"2024-05-01T12:00:00.000Z","updatedAt":"2024-05-02T00:00:00.000Z","createdAt":"2024-04-28T12:00:00.000Z","emissionFactorType":"lifecycle","isEstimated":false,"estimationMethod":null},
 {"zone":"DE","carbonIntensity":100,"datetime":"2024-05-01T13:00:00.000Z","updatedAt":"2024-05-02T00:00:00.000Z","createdAt":"2024-04-28T13:00:00.000Z","emissionFactorType":"lifecycle","isEstimated":false,"estimationMethod":null}
]}"#;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).expect("ts")
}

fn em_config(base: &str) -> LiveConfig {
    let mut cfg = LiveConfig::new(Provider::ElectricityMaps, Some("secret-token".into()));
    cfg.base_url = base.to_owned();
    cfg.timeout = Duration::from_millis(500);
    cfg
}

/// Electricity Maps at `base`, zone `zone`, 2024-05-01 12:00–14:00 UTC, with a fresh cache.
fn fetch_noon_to_two(base: &str, zone: &str) -> Result<LiveSeries, LiveError> {
    fetch_series(
        &em_config(base),
        &PlainHttp,
        &LiveCache::default(),
        Some(zone),
        ts("2024-05-01T12:00:00Z"),
        ts("2024-05-01T14:00:00Z"),
    )
}

fn request(provider: Provider, zone: Option<&str>) -> EstimateRequest {
    EstimateRequest {
        start_ts: Some(ts("2024-05-01T12:00:00Z")),
        end_ts: Some(ts("2024-05-01T14:00:00Z")),
        energy_wh: Some(2000.0),
        datacenter: Some("none".into()),
        provider: Some(provider),
        zone: zone.map(str::to_owned),
        ..EstimateRequest::default()
    }
}

#[test]
fn electricity_maps_past_range_integrates_the_span_and_is_cached() {
    let (base, log) = serve(1, |_, _| Some(ok(EM_PAST_RANGE)));
    let cfg = em_config(&base);
    let cache = LiveCache::default();
    let req = request(Provider::ElectricityMaps, Some("DE"));
    let (s, e) = (ts("2024-05-01T12:00:00Z"), ts("2024-05-01T14:00:00Z"));
    let live = fetch_series(&cfg, &PlainHttp, &cache, Some("DE"), s, e);
    assert!(!live.as_ref().expect("fetch").cached);
    let r = estimate_request_with_live(&req, None, Timestamp(0), Some(live)).expect("estimate");
    // 1 kWh at 300 + 1 kWh at 100 = 400 g.
    assert!((r.carbon_emissions_gco2 - 400.0).abs() < 1e-9, "{r:?}");
    assert_eq!(r.provenance.source, "live");
    assert_eq!(r.coverage, 1.0);
    assert_eq!(r.region.as_deref(), Some("DEU"));
    assert!(
        r.provenance.dataset.contains("Electricity Maps"),
        "{}",
        r.provenance.dataset
    );
    assert_eq!(r.provenance.fallback_reason, None);
    let (line, headers) = log.lock().expect("log")[0].clone();
    assert_eq!(
        line,
        "GET /v3/carbon-intensity/past-range?zone=DE&start=2024-05-01T12:00:00Z&end=2024-05-01T14:00:00Z HTTP/1.1"
    );
    assert!(
        headers.iter().any(|h| h == "auth-token: secret-token"),
        "{headers:?}"
    );
    // The same span again comes from the cache: the server (one connection) is not asked.
    let again = fetch_series(&cfg, &PlainHttp, &cache, Some("DE"), s, e).expect("cached");
    assert!(again.cached);
}

#[test]
fn gb_carbon_intensity_uses_actual_else_forecast() {
    let body = r#"{"data":[
      {"from":"2024-05-01T12:00Z","to":"2024-05-01T12:30Z","intensity":{"forecast":200,"actual":180,"index":"moderate"}},
      {"from":"2024-05-01T12:30Z","to":"2024-05-01T13:00Z","intensity":{"forecast":220,"actual":null,"index":"moderate"}}]}"#;
    // Served chunked, as the real API does.
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (base, log) = serve(1, move |_, _| Some(chunked.clone()));
    let mut cfg = LiveConfig::new(Provider::GbCarbonIntensity, None);
    cfg.base_url = base;
    let (s, e) = (ts("2024-05-01T12:00:00Z"), ts("2024-05-01T13:00:00Z"));
    let live = fetch_series(&cfg, &PlainHttp, &LiveCache::default(), None, s, e);
    let req = EstimateRequest {
        end_ts: Some(e),
        energy_wh: Some(1000.0),
        ..request(Provider::GbCarbonIntensity, None)
    };
    let r = estimate_request_with_live(&req, None, Timestamp(0), Some(live)).expect("estimate");
    // 0.5 kWh × 180 (actual) + 0.5 kWh × 220 (forecast, actual unknown) = 200 g.
    assert!((r.carbon_emissions_gco2 - 200.0).abs() < 1e-9, "{r:?}");
    assert_eq!(r.region.as_deref(), Some("GBR"));
    assert_eq!(
        log.lock().expect("log")[0].0,
        "GET /intensity/2024-05-01T12:00Z/2024-05-01T13:00Z HTTP/1.1"
    );
}

#[test]
fn http_error_falls_back_to_the_bundled_table() {
    let (base, _) = serve(1, |_, _| {
        Some("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".into())
    });
    let live = fetch_noon_to_two(&base, "DE");
    assert!(
        matches!(live, Err(LiveError::Status { status: 401, .. })),
        "{live:?}"
    );
    let r = estimate_request_with_live(
        &request(Provider::ElectricityMaps, Some("DE")),
        None,
        Timestamp(0),
        Some(live),
    )
    .expect("fallback estimate");
    assert_eq!(r.provenance.source, "bundled");
    assert_eq!(r.carbon_intensity_used_gco2_kwh, 380.95); // Germany 2023, bundled
    assert!(
        r.provenance
            .fallback_reason
            .as_deref()
            .is_some_and(|w| w.contains("401")),
        "{r:?}"
    );
}

#[test]
fn timeout_and_garbage_fall_back_too() {
    let (base, _) = serve(1, |_, _| None);
    let live = fetch_noon_to_two(&base, "FR");
    assert!(matches!(live, Err(LiveError::Timeout { .. })), "{live:?}");
    let r = estimate_request_with_live(
        &request(Provider::ElectricityMaps, Some("FR")),
        None,
        Timestamp(0),
        Some(live),
    )
    .expect("fallback");
    assert_eq!(r.region.as_deref(), Some("FRA"));
    assert!(r.provenance.fallback_reason.is_some());

    let (base, _) = serve(1, |_, _| Some(ok("<html>maintenance</html>")));
    let live = fetch_noon_to_two(&base, "FR");
    assert!(matches!(live, Err(LiveError::Parse { .. })), "{live:?}");
    // A closed port: connection refused.
    let live = fetch_noon_to_two("http://127.0.0.1:1", "FR");
    assert!(matches!(live, Err(LiveError::Transport { .. })), "{live:?}");
}
