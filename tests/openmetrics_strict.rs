//! What the exporter and `generate` write as OpenMetrics, held against a strict parser
//! (Python's `prometheus_client`): counts of events are whole numbers, as OpenMetrics
//! requires of histogram buckets and counts.

mod common;

use common::{Exporter, strict_openmetrics_parse};

const ACCEPT: &str = "Accept: application/openmetrics-text; version=1.0.0\r\n";

#[test]
fn the_openmetrics_scrape_passes_the_strict_parser_with_a_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    // A one-second grid: the outage, which starts with the run, shows at the first grid
    // point after the start (the frame served before it is the warm start's).
    std::fs::write(
        &config,
        "resolution = \"1s\"\n[incidents]\nrandom_per_day = 0\n\n\
         [[incident]]\nkind = \"outage\"\ntarget = \"server=srv-02\"\nduration = \"1h\"\n",
    )
    .unwrap();
    let exporter = Exporter::start(&["--servers", "12", "--config", config.to_str().unwrap()]);
    let down = "app_server_up{server=\"srv-02\"";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (head, body) = loop {
        let (head, body) = common::get_raw(exporter.addr, ACCEPT);
        let text = String::from_utf8_lossy(&body);
        let srv02_down = text
            .lines()
            .any(|l| l.starts_with(down) && l.ends_with(" 0"));
        if srv02_down {
            break (head, body);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "srv-02 not down within 10s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(head.contains("application/openmetrics-text"), "{head}");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("app_request_duration_seconds_bucket{"));
    assert!(text.contains("app_start_time_seconds{"));
    assert!(
        !text.contains("app_cpu_usage{server=\"srv-02\""),
        "a down server serves only app_server_up"
    );
    let samples = strict_openmetrics_parse(&body).unwrap_or_else(|e| panic!("refused: {e}"));
    assert!(samples > 11 * 20, "{samples} samples");
}

/// The histogram family of the history.
const HISTOGRAM: &str = "app_request_duration_seconds";

/// One family of an OpenMetrics text: its name, its `# TYPE` and `# HELP` lines, its samples.
struct Section<'a> {
    name: &'a str,
    header: Vec<&'a str>,
    samples: Vec<&'a str>,
}

fn sections(text: &str) -> Vec<Section<'_>> {
    let mut out: Vec<Section> = Vec::new();
    for line in text.lines().filter(|l| *l != "# EOF") {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            out.push(Section {
                name,
                header: Vec::new(),
                samples: Vec::new(),
            });
        }
        let section = out.last_mut().expect("a # TYPE line first");
        if line.starts_with('#') {
            section.header.push(line);
        } else {
            section.samples.push(line);
        }
    }
    out
}

/// The sections as one OpenMetrics text, `# EOF` last.
fn join(sections: &[Section]) -> String {
    let mut text = String::new();
    for s in sections {
        for line in s.header.iter().chain(&s.samples) {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str("# EOF\n");
    text
}

fn timestamp(sample: &str) -> &str {
    sample.rsplit(' ').next().unwrap()
}

fn series(sample: &str) -> &str {
    sample.rsplitn(3, ' ').nth(2).unwrap()
}

/// The golden fleet (a server down, incidents under way, machines renamed by churn) over
/// two hours, a sample a minute, as `generate` writes its OpenMetrics history.
fn history() -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("history.om");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/golden.toml");
    let r = common::run(&[
        "generate",
        "--config",
        config,
        "--start",
        "2026-11-24T11:00:00Z",
        "--end",
        "2026-11-24T13:00:00Z",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    std::fs::read_to_string(out).unwrap()
}

/// The strict parser keeps only the first `_created` sample of a series (it takes the
/// others, at the same timestamps as their `_total`, for duplicates), and reads a histogram
/// series' buckets only at its first timestamp: a histogram over time is refused (see
/// the_strict_parser_cannot_read_a_histogram_series_over_time). So the history is held
/// against it whole but for the histogram, which is held at its first instant.
#[test]
fn the_openmetrics_history_passes_the_strict_parser_family_by_family_series_by_series() {
    let text = history();
    let mut families = sections(&text);
    assert_eq!(families.len(), 12, "families of the history");
    let up = families.iter().find(|f| f.name == "app_server_up").unwrap();
    let first_series = series(up.samples[0]);
    let repeated = up.samples.iter().filter(|s| series(s) == first_series);
    let repeated = repeated.count();
    assert!(repeated >= 10, "{repeated} samples of {first_series}");
    let incidents = families
        .iter()
        .find(|f| f.name == "fleetsim_incident_active")
        .unwrap();
    assert!(incidents.samples.len() > 60, "incidents under way");

    let histogram = families.iter_mut().find(|f| f.name == HISTOGRAM).unwrap();
    let first = timestamp(histogram.samples[0]).to_string();
    histogram.samples.retain(|s| timestamp(s) == first);
    let servers = histogram
        .samples
        .iter()
        .filter(|s| s.contains("le=\"+Inf\""))
        .count();
    assert!(servers >= 5, "{servers} histograms at {first}");

    let document = join(&families);
    let lines = document.lines().filter(|l| !l.starts_with('#')).count();
    let created = document
        .lines()
        .filter(|l| l.split('{').next().unwrap().ends_with("_created"))
        .count();
    let read = strict_openmetrics_parse(document.as_bytes())
        .unwrap_or_else(|e| panic!("the strict parser refused the history: {e}"));
    assert!(
        read >= lines - created && read <= lines,
        "{read} samples read of {lines} ({created} _created)"
    );
}

/// What the strict parser is for: the same history with one family's series interleaved
/// by time, as the history once was, is refused.
#[test]
fn the_strict_parser_refuses_a_family_whose_series_interleave() {
    let text = history();
    let mut families = sections(&text);
    families.retain(|f| f.name != HISTOGRAM);
    let cpu = families
        .iter_mut()
        .find(|f| f.name == "app_cpu_usage")
        .unwrap();
    cpu.samples
        .sort_by_key(|s| timestamp(s).parse::<f64>().unwrap() as i64);
    let e = strict_openmetrics_parse(join(&families).as_bytes()).unwrap_err();
    assert!(e.contains("Invalid metric grouping"), "{e}");
}

/// prometheus_client's parser forgets which buckets it saw only when the series changes,
/// not when the timestamp does: the second instant's buckets of a series are dropped as
/// duplicates, and the histogram is refused for a missing `+Inf`. When this fails, the
/// parser reads histograms over time, and the history's test above should hold the whole
/// histogram against it.
#[test]
fn the_strict_parser_cannot_read_a_histogram_series_over_time() {
    let text = history();
    let mut families = sections(&text);
    families.retain(|f| f.name == HISTOGRAM);
    let histogram = &mut families[0];
    let mut instants: Vec<&str> = histogram.samples.iter().map(|s| timestamp(s)).collect();
    instants.sort();
    instants.dedup();
    let two: Vec<String> = instants[..2].iter().map(|t| t.to_string()).collect();
    histogram
        .samples
        .retain(|s| two.iter().any(|t| timestamp(s) == t));
    let first_series = series(histogram.samples[0]);
    let repeated = histogram
        .samples
        .iter()
        .filter(|s| series(s) == first_series);
    assert_eq!(repeated.count(), 2, "{first_series} at {two:?}");
    let e = strict_openmetrics_parse(join(&families).as_bytes()).unwrap_err();
    assert!(e.contains("+Inf bucket missing"), "{e}");
}
