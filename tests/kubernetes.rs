//! deploy/kubernetes/, checked offline, with no cluster:
//!
//! - every manifest against its kind's schema, unknown fields refused: the Kubernetes API's
//!   own with `kubernetes-validate --strict` (PyPI), the PodMonitor with the models that
//!   `cloudcoil-models-prometheus-operator` (PyPI) generates from the prometheus-operator's
//!   CRDs, validated with extra fields forbidden;
//! - the manifests against each other: replicas and FLEETSIM_SHARDS, the labels the Service,
//!   the PodMonitor and the scrape job select, the named port, the probes' paths, a startup
//!   budget and memory sized from bench/RESULTS.md, the security context;
//! - the containers' arguments against the real binary's parser;
//! - the scrape job: VictoriaMetrics' strict parser reads its Kubernetes discovery (Debian's
//!   Prometheus is built without it), and a real Prometheus, given the targets that pod
//!   discovery would yield for the manifests' pods, keeps the shards' port only and names
//!   them job="fleetsim", instance=<pod>, after promtool has checked that same config.
//!
//! A missing tool fails its test with one line naming the package (scripts/test installs
//! them); nothing is skipped. the_validation_refuses_unknown_fields_and_kinds and
//! the_consistency_checks_catch_what_they_are_for run the same checks on broken copies, so
//! that they are known to fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The oldest Kubernetes the manifests are written for, and a recent one.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.34.0"];

/// bench/RESULTS.md measured fleetsim on this many cores.
const BENCH_CORES: f64 = 2.0;
/// The slowest start per server the bench measured, rounded up: 1,000 servers in 0.126 s at
/// the slowest of 5 runs (10,000 took 0.813 s, 100,000 took 6.2 s).
const BENCH_WARMUP_S_PER_SERVER: f64 = 0.15 / 1_000.0;
/// Peak RSS (VmHWM) in MB at 10,000 and 100,000 servers; taken as linear in the servers.
const BENCH_PEAK_MB: [(f64, f64); 2] = [(10_000.0, 37.9), (100_000.0, 286.8)];
/// Prometheus 2.42's gzipped OpenMetrics scrapes raised the peak at 10,000 servers from the
/// bench's 34.5 MB then (uncompressed curl scrapes, the model before its counters were
/// sampled) to 43.9 MB.
const SCRAPE_PEAK_FACTOR: f64 = 1.3;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(relative: &str) -> PathBuf {
    root().join("deploy/kubernetes").join(relative)
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} exited with {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------
// Reading YAML: PyYAML, which kubernetes-validate depends on (no YAML crate is a dependency).

/// Runs `script` with `args` in python3; exit 4 means a module is missing, and panics with
/// `missing`.
fn python(script: &str, args: &[&Path], missing: &str) -> Output {
    let out = Command::new(common::require_tool("python3", "python3"))
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert_ne!(out.status.code(), Some(4), "{missing}");
    out
}

/// The documents of a YAML file, as JSON.
fn yaml_documents(path: &Path) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
try:
    import yaml
except ImportError:
    sys.exit(4)
with open(sys.argv[1]) as f:
    print(json.dumps([d for d in yaml.safe_load_all(f) if d is not None]))
"#;
    let out = python(
        SCRIPT,
        &[path],
        "Python's PyYAML is not installed: `python3 -m pip install kubernetes-validate` brings \
         it (scripts/test installs it)",
    );
    assert!(
        out.status.success(),
        "{}",
        describe(&format!("reading {}", path.display()), &out)
    );
    serde_json::from_slice(&out.stdout).expect("PyYAML's documents as JSON")
}

/// The one document of a YAML file.
fn yaml_document(path: &Path) -> Value {
    let mut docs = yaml_documents(path);
    assert_eq!(docs.len(), 1, "{} should hold one document", path.display());
    docs.remove(0)
}

// ---------------------------------------------------------------------------------------
// Schema validation.

/// Checks the resources of `path` against their kinds' schemas, unknown fields refused: a
/// kind that no schema knows is an error, not a warning.
fn validate(path: &Path) -> Result<(), String> {
    let docs = yaml_documents(path);
    if docs.is_empty() {
        return Err(format!("{}: no resource", path.display()));
    }
    let of_operator = docs
        .iter()
        .filter(|d| {
            d["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
        })
        .count();
    match of_operator {
        0 => validate_kubernetes(path),
        n if n == docs.len() => validate_prometheus_operator(path),
        _ => Err(format!(
            "{}: prometheus-operator resources belong in files of their own",
            path.display()
        )),
    }
}

/// The Kubernetes API's schemas, at each of KUBERNETES_VERSIONS.
fn validate_kubernetes(path: &Path) -> Result<(), String> {
    let tool = common::find_on_path("kubernetes-validate").unwrap_or_else(|| {
        panic!(
            "`kubernetes-validate` is not installed (not on PATH): `python3 -m pip install \
             kubernetes-validate` (scripts/test installs it)"
        )
    });
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(&tool)
            .args(["--strict", "--quiet", "-k", version])
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .expect("kubernetes-validate runs");
        // --quiet leaves only failures and warnings, and a warning is a kind it has no
        // schema for, which it lets pass with status 0.
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || !said.trim().is_empty() {
            return Err(format!("kubernetes-validate -k {version}: {}", said.trim()));
        }
    }
    Ok(())
}

/// The prometheus-operator's kinds, as the pydantic models generated from its CRDs' schemas
/// (types, enums, patterns such as durations'), with every unknown field refused.
fn validate_prometheus_operator(path: &Path) -> Result<(), String> {
    const SCRIPT: &str = r#"
import sys
try:
    import yaml
    from cloudcoil.models.prometheus_operator import v1
    from cloudcoil.resources import Resource
except ImportError:
    sys.exit(4)
problems = []
with open(sys.argv[1]) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
for doc in docs:
    version, kind = doc.get("apiVersion"), doc.get("kind")
    model = getattr(v1, str(kind), None) if version == "monitoring.coreos.com/v1" else None
    if not (isinstance(model, type) and issubclass(model, Resource)):
        problems.append(f"no schema for kind {kind} of {version}")
        continue
    try:
        model.model_validate(doc, extra="forbid")
    except Exception as e:
        problems.append(f"{kind}: {e}")
if problems:
    print("\n".join(problems))
    sys.exit(3)
"#;
    let out = python(
        SCRIPT,
        &[path],
        "Python's `cloudcoil-models-prometheus-operator` is not installed: `python3 -m pip \
         install cloudcoil-models-prometheus-operator` (scripts/test installs it)",
    );
    match out.status.code() {
        Some(0) => Ok(()),
        Some(3) => Err(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        _ => panic!("{}", describe("the PodMonitor's validation", &out)),
    }
}

/// Every manifest under deploy/kubernetes/: the .yaml files but the kustomizations.
fn manifests() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "yaml")
                && path.file_name().is_some_and(|n| n != "kustomization.yaml")
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&deploy(""), &mut found);
    found.sort();
    found
}

#[test]
fn every_manifest_passes_its_schemas() {
    let manifests = manifests();
    for expected in [
        "statefulset.yaml",
        "service.yaml",
        "podmonitor.yaml",
        "remote-write/statefulset.yaml",
    ] {
        assert!(
            manifests.contains(&deploy(expected)),
            "{expected} is not among {manifests:?}"
        );
    }
    for path in &manifests {
        if let Err(e) = validate(path) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// A copy of the manifest `relative` with `from` replaced by `to` (which must occur).
fn broken_copy(dir: &Path, relative: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(deploy(relative)).unwrap();
    assert!(text.contains(from), "{relative} has no `{from}`");
    let path = dir.join(relative.replace('/', "-"));
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn the_validation_refuses_unknown_fields_and_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // An unknown field in the pod's container.
        (
            "statefulset.yaml",
            "          imagePullPolicy: IfNotPresent\n",
            "          imagePullPolicy: IfNotPresent\n          imagePullPolicyy: Always\n",
            "imagePullPolicyy",
        ),
        // A wrong type.
        (
            "service.yaml",
            "      port: 8000\n",
            "      port: eight-thousand\n",
            "eight-thousand",
        ),
        // A kind without a schema, which kubernetes-validate only warns about.
        (
            "service.yaml",
            "kind: Service\n",
            "kind: Servise\n",
            "Servise",
        ),
        // The PodMonitor: an unknown field, a malformed duration, an unknown kind.
        (
            "podmonitor.yaml",
            "      scrapeTimeout: 10s\n",
            "      scrapeTimout: 10s\n",
            "scrapeTimout",
        ),
        (
            "podmonitor.yaml",
            "      interval: 15s\n",
            "      interval: 15 seconds\n",
            "interval",
        ),
        (
            "podmonitor.yaml",
            "kind: PodMonitor\n",
            "kind: PodMonitour\n",
            "PodMonitour",
        ),
    ];
    for (relative, from, to, named) in cases {
        let path = broken_copy(dir.path(), relative, from, to);
        match validate(&path) {
            Ok(()) => panic!("{relative} with `{}` passed", to.trim()),
            Err(e) => assert!(e.contains(named), "{relative}: `{named}` is not in: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The manifests against each other.

/// deploy/kubernetes/'s resources and configs, as JSON.
#[derive(Clone)]
struct Deploy {
    shards: Value,
    pushers: Value,
    service: Value,
    pod_monitor: Value,
    scrape: Value,
    kustomization: Value,
    push_kustomization: Value,
}

fn load() -> Deploy {
    Deploy {
        shards: yaml_document(&deploy("statefulset.yaml")),
        pushers: yaml_document(&deploy("remote-write/statefulset.yaml")),
        service: yaml_document(&deploy("service.yaml")),
        pod_monitor: yaml_document(&deploy("podmonitor.yaml")),
        scrape: yaml_document(&deploy("prometheus.yml")),
        kustomization: yaml_document(&deploy("kustomization.yaml")),
        push_kustomization: yaml_document(&deploy("remote-write/kustomization.yaml")),
    }
}

fn name(resource: &Value) -> &str {
    resource["metadata"]["name"].as_str().unwrap_or("?")
}

fn container(sts: &Value) -> &Value {
    &sts["spec"]["template"]["spec"]["containers"][0]
}

fn pod_labels(sts: &Value) -> &Value {
    &sts["spec"]["template"]["metadata"]["labels"]
}

/// Whether every label of `selector` is in `labels` with its value (an empty selector
/// selects nothing here: it would select every pod).
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

fn env<'a>(container: &'a Value, var: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == var)?["value"]
        .as_str()
}

fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The value of `--flag` in `args`, given as `--flag value` or `--flag=value`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(name)?.strip_prefix('=')
        }
    })
}

/// A CPU quantity in cores: "250m", "2", "0.5".
fn cores(quantity: &Value) -> Option<f64> {
    let q = quantity.as_str()?;
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.parse().ok(),
    }
}

/// A memory quantity in MB (10^6 bytes): "64Mi", "1Gi", "500M".
fn megabytes(quantity: &Value) -> Option<f64> {
    let q = quantity.as_str()?;
    let units = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|(suffix, scale)| q.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((q, 1.0));
    number.parse::<f64>().ok().map(|n| n * scale / 1e6)
}

/// The bench's peak RSS for `servers` in one process, in MB, on the line through its two
/// largest sizes.
fn bench_peak_mb(servers: f64) -> f64 {
    let [(s0, m0), (s1, m1)] = BENCH_PEAK_MB;
    let slope = (m1 - m0) / (s1 - s0);
    (m0 + slope * (servers - s0)).max(m0 - slope * s0)
}

/// A probe's budget in seconds: how long the kubelet waits before it gives up.
fn probe_budget(probe: &Value) -> f64 {
    let field = |k: &str, default: f64| probe[k].as_f64().unwrap_or(default);
    field("initialDelaySeconds", 0.0)
        + field("periodSeconds", 10.0) * field("failureThreshold", 3.0)
}

fn statefulset_problems(sts: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let set = name(sts);
    let spec = &sts["spec"];
    let c = container(sts);
    let replicas = spec["replicas"].as_u64();
    let shards = env(c, "FLEETSIM_SHARDS").and_then(|v| v.parse::<u64>().ok());
    if replicas.is_none() || replicas != shards {
        p.push(format!(
            "{set}: replicas {replicas:?} and FLEETSIM_SHARDS {shards:?} must be equal"
        ));
    }
    if spec["podManagementPolicy"] != "Parallel" {
        p.push(format!("{set}: podManagementPolicy should be Parallel"));
    }
    if !selects(&spec["selector"]["matchLabels"], pod_labels(sts)) {
        p.push(format!("{set}: its selector does not select its own pods"));
    }
    for labels in [&sts["metadata"]["labels"], pod_labels(sts)] {
        if labels["app.kubernetes.io/name"] != "fleetsim" {
            p.push(format!(
                "{set}: a label app.kubernetes.io/name=fleetsim is missing"
            ));
        }
    }

    let args = args(c);
    if args.first().map(String::as_str) != Some("exporter") {
        p.push(format!("{set}: the arguments should start with `exporter`"));
    }
    if flag(&args, "--shard") != Some("auto/$(FLEETSIM_SHARDS)") {
        p.push(format!("{set}: --shard should be auto/$(FLEETSIM_SHARDS)"));
    }
    let listen_port = flag(&args, "--listen")
        .and_then(|l| l.rsplit(':').next())
        .and_then(|port| port.parse::<u64>().ok());
    let metrics_port = c["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|port| port["name"] == "metrics"));
    match (listen_port, metrics_port) {
        (Some(listen), Some(port)) if port["containerPort"].as_u64() == Some(listen) => {}
        _ => p.push(format!(
            "{set}: --listen's port should be the container port named metrics"
        )),
    }
    for (probe, path) in [
        ("startupProbe", "/-/ready"),
        ("readinessProbe", "/-/ready"),
        ("livenessProbe", "/-/healthy"),
    ] {
        let get = &c[probe]["httpGet"];
        if get["path"] != path || get["port"] != "metrics" {
            p.push(format!(
                "{set}: {probe} should get {path} on the port named metrics"
            ));
        }
    }

    let servers = flag(&args, "--servers").and_then(|s| s.parse::<u64>().ok());
    let (Some(servers), Some(shards)) = (servers, shards.filter(|&k| k > 0)) else {
        p.push(format!(
            "{set}: --servers and FLEETSIM_SHARDS should be whole numbers"
        ));
        return p;
    };
    let per_shard = servers.div_ceil(shards) as f64;
    let resources = &c["resources"];
    match cores(&resources["requests"]["cpu"]) {
        Some(cpu) if cpu > 0.0 => {
            // The warm-up uses every core it may; held to its request, it is that much
            // slower than on the bench's two cores.
            let needed = per_shard * BENCH_WARMUP_S_PER_SERVER * (BENCH_CORES / cpu).max(1.0);
            let budget = probe_budget(&c["startupProbe"]);
            if budget < needed {
                p.push(format!(
                    "{set}: the startup budget of {budget} s is under the {needed:.0} s that \
                     warming {per_shard} servers takes on {cpu} cores"
                ));
            }
        }
        _ => p.push(format!("{set}: a CPU request is missing")),
    }
    let peak = bench_peak_mb(per_shard) * SCRAPE_PEAK_FACTOR;
    let request = megabytes(&resources["requests"]["memory"]).unwrap_or(0.0);
    let limit = megabytes(&resources["limits"]["memory"]).unwrap_or(0.0);
    if request < peak || limit < 2.0 * peak {
        p.push(format!(
            "{set}: memory request {request:.0} MB and limit {limit:.0} MB should be at least \
             {peak:.0} MB and twice that, for {per_shard} servers a shard"
        ));
    }

    let pod_security = &sts["spec"]["template"]["spec"]["securityContext"];
    let security = &c["securityContext"];
    if security["runAsNonRoot"] != true && pod_security["runAsNonRoot"] != true {
        p.push(format!("{set}: runAsNonRoot should be true"));
    }
    if security["readOnlyRootFilesystem"] != true {
        p.push(format!("{set}: readOnlyRootFilesystem should be true"));
    }
    if security["allowPrivilegeEscalation"] != false {
        p.push(format!("{set}: allowPrivilegeEscalation should be false"));
    }
    if !security["capabilities"]["drop"]
        .as_array()
        .is_some_and(|d| d.iter().any(|c| c == "ALL"))
    {
        p.push(format!("{set}: capabilities should drop ALL"));
    }
    p
}

fn service_problems(d: &Deploy) -> Vec<String> {
    let mut p = Vec::new();
    let spec = &d.service["spec"];
    if spec["clusterIP"] != "None" {
        p.push("the Service should be headless (clusterIP: None)".to_string());
    }
    if !selects(&spec["selector"], pod_labels(&d.shards)) {
        p.push("the Service does not select the shards".to_string());
    }
    if selects(&spec["selector"], pod_labels(&d.pushers)) {
        p.push("the Service selects the pushers too".to_string());
    }
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if !ports
        .iter()
        .any(|port| port["name"] == "metrics" && port["targetPort"] == "metrics")
    {
        p.push("the Service should have a port metrics with targetPort metrics".to_string());
    }
    if d.shards["spec"]["serviceName"] != d.service["metadata"]["name"] {
        p.push("the shards' serviceName should be the Service's name".to_string());
    }
    p
}

fn pod_monitor_problems(d: &Deploy) -> Vec<String> {
    let mut p = Vec::new();
    let spec = &d.pod_monitor["spec"];
    let selector = &spec["selector"]["matchLabels"];
    if !selects(selector, pod_labels(&d.shards)) {
        p.push("the PodMonitor does not select the shards".to_string());
    }
    if selects(selector, pod_labels(&d.pushers)) {
        p.push("the PodMonitor selects the pushers too".to_string());
    }
    let endpoints = spec["podMetricsEndpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if endpoints.is_empty() {
        p.push("the PodMonitor has no podMetricsEndpoints".to_string());
    }
    for endpoint in &endpoints {
        if endpoint["port"] != "metrics" || endpoint["path"] != "/metrics" {
            p.push("the PodMonitor should scrape /metrics on the port named metrics".to_string());
        }
        if !endpoint["interval"].is_string() {
            p.push("the PodMonitor should say its interval".to_string());
        }
        let names_instance = endpoint["relabelings"].as_array().is_some_and(|r| {
            r.iter().any(|rule| {
                rule["targetLabel"] == "instance"
                    && rule["sourceLabels"] == json!(["__meta_kubernetes_pod_name"])
            })
        });
        if !names_instance {
            p.push("the PodMonitor should name each instance after its pod".to_string());
        }
    }
    let job_label = spec["jobLabel"].as_str().unwrap_or("");
    if pod_labels(&d.shards)[job_label] != "fleetsim" {
        p.push("the PodMonitor's jobLabel should name a pod label whose value is fleetsim".into());
    }
    p
}

fn scrape_problems(d: &Deploy) -> Vec<String> {
    let mut p = Vec::new();
    let jobs = d.scrape["scrape_configs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(job) = jobs.iter().find(|j| j["job_name"] == "fleetsim") else {
        return vec!["prometheus.yml has no job fleetsim".to_string()];
    };
    let sd = &job["kubernetes_sd_configs"];
    if sd.as_array().map(Vec::len) != Some(1) || sd[0]["role"] != "pod" {
        p.push("the job fleetsim should discover pods (one kubernetes_sd_config, role pod)".into());
    }
    let namespace = &d.kustomization["namespace"];
    if !sd[0]["namespaces"]["names"]
        .as_array()
        .is_some_and(|n| n.contains(namespace))
    {
        p.push(format!(
            "the job fleetsim should look in the kustomization's namespace {namespace}"
        ));
    }
    p
}

fn kustomization_problems(d: &Deploy) -> Vec<String> {
    let mut p = Vec::new();
    let manifests = manifests();
    for (dir, k, needed) in [
        (
            "",
            &d.kustomization,
            vec!["statefulset.yaml", "service.yaml"],
        ),
        (
            "remote-write",
            &d.push_kustomization,
            vec!["statefulset.yaml"],
        ),
    ] {
        if k["apiVersion"] != "kustomize.config.k8s.io/v1beta1" || k["kind"] != "Kustomization" {
            p.push(format!("{dir}/kustomization.yaml is not a Kustomization"));
        }
        if k["namespace"] != d.kustomization["namespace"] {
            p.push(format!(
                "{dir}/kustomization.yaml should use the same namespace"
            ));
        }
        let resources: Vec<&str> = k["resources"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for resource in &resources {
            // kustomize refuses files outside the kustomization's folder.
            let path = deploy(dir).join(resource);
            if resource.contains("..") || !manifests.contains(&path) {
                p.push(format!(
                    "{dir}/kustomization.yaml: {resource} is not a manifest of its folder"
                ));
            }
        }
        for resource in needed {
            if !resources.contains(&resource) {
                p.push(format!("{dir}/kustomization.yaml should list {resource}"));
            }
        }
    }
    p
}

fn all_problems(d: &Deploy) -> Vec<String> {
    let mut p = statefulset_problems(&d.shards);
    p.extend(statefulset_problems(&d.pushers));
    p.extend(service_problems(d));
    p.extend(pod_monitor_problems(d));
    p.extend(scrape_problems(d));
    p.extend(kustomization_problems(d));
    let (shards, pushers) = (container(&d.shards), container(&d.pushers));
    if flag(&args(pushers), "--remote-write") != Some("$(FLEETSIM_REMOTE_WRITE_URL)")
        || !env(pushers, "FLEETSIM_REMOTE_WRITE_URL").is_some_and(|u| u.starts_with("http://"))
    {
        p.push("the pushers should push to $(FLEETSIM_REMOTE_WRITE_URL), an http:// URL".into());
    }
    if flag(&args(shards), "--remote-write").is_some() {
        p.push("the scraped shards should not push as well".into());
    }
    if shards["image"] != pushers["image"] {
        p.push("both StatefulSets should run the same image".into());
    }
    p
}

#[test]
fn the_manifests_agree_with_each_other() {
    let problems = all_problems(&load());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_consistency_checks_catch_what_they_are_for() {
    type Breakage = fn(&mut Deploy);
    let cases: [(&str, Breakage, &str); 12] = [
        (
            "replicas without FLEETSIM_SHARDS",
            |d| d.shards["spec"]["replicas"] = json!(11),
            "fleetsim: replicas",
        ),
        (
            "FLEETSIM_SHARDS without replicas",
            |d| {
                d.pushers["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] =
                    json!("9")
            },
            "fleetsim-push: replicas",
        ),
        (
            "a fixed shard",
            |d| set_flag(&mut d.shards, "--shard", "1/10"),
            "--shard should be",
        ),
        (
            "liveness on readiness",
            |d| {
                d.shards["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]
                    ["path"] = json!("/-/ready")
            },
            "livenessProbe",
        ),
        (
            "ten times the servers",
            |d| set_flag(&mut d.shards, "--servers", "1000000"),
            "startup budget",
        ),
        (
            "ten times the servers",
            |d| set_flag(&mut d.shards, "--servers", "1000000"),
            "memory request",
        ),
        (
            "a writable root",
            |d| {
                d.shards["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] =
                    json!(false)
            },
            "readOnlyRootFilesystem",
        ),
        (
            "a renamed port",
            |d| {
                d.shards["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] =
                    json!("web")
            },
            "the container port named metrics",
        ),
        (
            "the Service on the pushers",
            |d| d.service["spec"]["selector"]["app.kubernetes.io/component"] = json!("pusher"),
            "the Service does not select the shards",
        ),
        (
            "the PodMonitor on every fleetsim pod",
            |d| {
                let selector = &mut d.pod_monitor["spec"]["selector"]["matchLabels"];
                selector
                    .as_object_mut()
                    .unwrap()
                    .remove("app.kubernetes.io/component");
            },
            "the PodMonitor selects the pushers too",
        ),
        (
            "the PodMonitor on another port",
            |d| d.pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] = json!("http"),
            "port named metrics",
        ),
        (
            "the scrape job on endpoints",
            |d| {
                d.scrape["scrape_configs"][0]["kubernetes_sd_configs"][0]["role"] =
                    json!("endpoints")
            },
            "role pod",
        ),
    ];
    let intact = load();
    for (what, break_it, expected) in cases {
        let mut d = intact.clone();
        break_it(&mut d);
        let problems = all_problems(&d);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{what}: no problem says `{expected}`: {problems:?}"
        );
    }
}

/// Replaces the value of `--flag` in the StatefulSet's container arguments.
fn set_flag(sts: &mut Value, name: &str, value: &str) {
    let args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array_mut()
        .unwrap();
    let at = args.iter().position(|a| a == name).unwrap();
    args[at + 1] = json!(value);
}

// ---------------------------------------------------------------------------------------
// The arguments, against the binary.

/// The container's arguments as its pods run them: `$(VAR)` expanded from the container's
/// env, as the kubelet does.
fn expanded_args(sts: &Value) -> Vec<String> {
    let c = container(sts);
    let vars: BTreeMap<&str, &str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    let resolved: Vec<String> = args(c)
        .iter()
        .map(|a| {
            vars.iter()
                .fold(a.clone(), |a, (k, v)| a.replace(&format!("$({k})"), v))
        })
        .collect();
    assert!(
        resolved.iter().all(|a| !a.contains("$(")),
        "{}: an argument names a variable the container does not set: {resolved:?}",
        name(sts)
    );
    resolved
}

/// The pod's arguments but `exporter` and `--listen` (the tests listen on loopback), made
/// runnable here: the config from the repository (where the image has it), and a fleet of
/// `servers` (the manifest's takes minutes to warm up); the shard stays `auto/K`, resolved
/// by the binary from the pod's host name.
fn runnable_here(args: &[String], servers: &str) -> Vec<String> {
    let mut args = args[1..].to_vec();
    let at = args.iter().position(|a| a == "--listen").unwrap();
    args.drain(at..at + 2);
    let at = args.iter().position(|a| a == "--servers").unwrap() + 1;
    args[at] = servers.to_string();
    let at = args.iter().position(|a| a == "--config").unwrap() + 1;
    let in_repo = args[at].strip_prefix("/etc/fleetsim/").unwrap().to_string();
    args[at] = root().join("config").join(in_repo).display().to_string();
    args
}

fn fleetsim_help(args: &[String]) -> Output {
    common::bin()
        .args(args)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

/// The servers an exporter serves, by name.
fn served_servers(exporter: &common::Exporter) -> BTreeSet<String> {
    common::parse_exposition(&exporter.get("/metrics").body)
        .into_iter()
        .filter(|s| s.name == "app_server_up")
        .map(|s| s.labels["server"].clone())
        .collect()
}

#[test]
fn the_arguments_run_with_the_binary_each_pod_its_own_shard() {
    let d = load();
    let help = String::from_utf8(common::run(&["exporter", "--help"]).stdout).unwrap();
    for sts in [&d.shards, &d.pushers] {
        for arg in args(container(sts)).iter().filter(|a| a.starts_with("--")) {
            let flag = arg.split('=').next().unwrap();
            assert!(
                help.contains(&format!("{flag} ")),
                "{}: `fleetsim exporter --help` has no {flag}",
                name(sts)
            );
        }
        let expanded = expanded_args(sts);
        assert_eq!(expanded[0], "exporter", "{}", name(sts));
        // clap checks each value as it reads it, so a bad one fails before --help answers.
        let out = fleetsim_help(&expanded);
        assert!(
            out.status.success(),
            "{}",
            describe(&expanded.join(" "), &out)
        );

        // The image is the Dockerfile's, which copies config/ to /etc/fleetsim.
        let config = flag(&args(container(sts)), "--config").unwrap().to_string();
        let in_repo = config.strip_prefix("/etc/fleetsim/").unwrap();
        assert!(root().join("config").join(in_repo).is_file(), "{config}");
    }

    // The shards' own arguments, run as the first and the last pod: each serves its slice
    // of a fleet of 1,000 (the K-th of K the last hundredth of it at K = 10), and a pod
    // past the last is refused in one line.
    let expanded = expanded_args(&d.shards);
    let shards = env(container(&d.shards), "FLEETSIM_SHARDS")
        .unwrap()
        .parse::<usize>()
        .unwrap();
    let here = runnable_here(&expanded, "1000");
    let here: Vec<&str> = here.iter().map(String::as_str).collect();
    let set = name(&d.shards);
    let per_shard = 1000 / shards;
    for ordinal in [0, shards - 1] {
        let host = format!("{set}-{ordinal}");
        let pod = common::Exporter::start_with_env(&here, &[("HOSTNAME", &host)]);
        let expected: BTreeSet<String> = (ordinal * per_shard + 1..=(ordinal + 1) * per_shard)
            .map(|i| format!("srv-{i:04}"))
            .collect();
        assert_eq!(served_servers(&pod), expected, "{host}");
    }
    let beyond = common::bin()
        .args(["exporter", "--listen", "127.0.0.1:0"])
        .args(&here)
        .env_remove("FLEETSIM_SHARD_ORDINAL")
        .env("HOSTNAME", format!("{set}-{shards}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&beyond.stderr);
    assert_eq!(beyond.status.code(), Some(2), "{err}");
    assert!(err.contains("past the last"), "{err}");

    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY config /etc/fleetsim"));
    assert!(dockerfile.contains("USER nobody"));
}

// ---------------------------------------------------------------------------------------
// The scrape job.

/// `victoria-metrics -promscrape.config.dryRun`: its strict parser, which knows
/// kubernetes_sd_configs.
fn victoria_metrics_parses(config: &Path) -> Result<(), String> {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(common::require_tool("victoria-metrics", "victoria-metrics"))
        .arg(format!("-promscrape.config={}", config.display()))
        .arg("-promscrape.config.dryRun")
        .arg("-promscrape.config.strictParse")
        .arg(format!("-storageDataPath={}", data.path().display()))
        .stdin(Stdio::null())
        .output()
        .expect("victoria-metrics runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(describe("victoria-metrics -promscrape.config.dryRun", &out))
    }
}

#[test]
fn victoria_metrics_reads_the_kubernetes_discovery() {
    if let Err(e) = victoria_metrics_parses(&deploy("prometheus.yml")) {
        panic!("{e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let broken = broken_copy(dir.path(), "prometheus.yml", "namespaces:", "namespace:");
    let refused = victoria_metrics_parses(&broken).expect_err("an unknown field passed");
    assert!(refused.contains("namespace"), "{refused}");
}

/// Label names as Kubernetes discovery writes pod labels into meta labels.
fn sanitized(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The targets pod discovery yields for a pod with `labels` and `ports`: one per container
/// port, with the meta labels that Prometheus documents for role pod.
fn pod_targets(
    pod: &str,
    namespace: &str,
    labels: &Value,
    ports: &[Value],
    address: &str,
) -> Vec<Value> {
    ports
        .iter()
        .map(|port| {
            let mut meta = serde_json::Map::new();
            meta.insert("__meta_kubernetes_namespace".into(), json!(namespace));
            meta.insert("__meta_kubernetes_pod_name".into(), json!(pod));
            meta.insert("__meta_kubernetes_pod_ready".into(), json!("true"));
            meta.insert(
                "__meta_kubernetes_pod_container_name".into(),
                json!("fleetsim"),
            );
            meta.insert(
                "__meta_kubernetes_pod_container_port_name".into(),
                port["name"].clone(),
            );
            meta.insert(
                "__meta_kubernetes_pod_container_port_number".into(),
                json!(port["containerPort"].to_string()),
            );
            for (k, v) in labels.as_object().unwrap() {
                let k = sanitized(k);
                meta.insert(format!("__meta_kubernetes_pod_label_{k}"), v.clone());
                meta.insert(
                    format!("__meta_kubernetes_pod_labelpresent_{k}"),
                    json!("true"),
                );
            }
            json!({"targets": [address], "labels": meta})
        })
        .collect()
}

#[test]
fn prometheus_keeps_every_shard_and_names_it() {
    let d = load();
    let namespace = d.kustomization["namespace"].as_str().unwrap();
    let exporter = common::Exporter::start(&["--servers", "3"]);
    let address = exporter.addr.to_string();
    let ports = container(&d.shards)["ports"].as_array().unwrap().clone();
    let shards = env(container(&d.shards), "FLEETSIM_SHARDS")
        .unwrap()
        .parse::<u64>()
        .unwrap();

    // What discovery would find: the first and last shards, a shard's other port, a pusher,
    // and another application's pod.
    let mut targets = Vec::new();
    for ordinal in [0, shards - 1] {
        let pod = format!("{}-{ordinal}", name(&d.shards));
        targets.extend(pod_targets(
            &pod,
            namespace,
            pod_labels(&d.shards),
            &ports,
            &address,
        ));
    }
    let admin = [json!({"name": "admin", "containerPort": 8001})];
    targets.extend(pod_targets(
        "fleetsim-0",
        namespace,
        pod_labels(&d.shards),
        &admin,
        "127.0.0.1:9",
    ));
    let pushers = container(&d.pushers)["ports"].as_array().unwrap().clone();
    let pusher = format!("{}-0", name(&d.pushers));
    targets.extend(pod_targets(
        &pusher,
        namespace,
        pod_labels(&d.pushers),
        &pushers,
        "127.0.0.1:9",
    ));
    let other = json!({"app.kubernetes.io/name": "grafana"});
    targets.extend(pod_targets(
        "grafana-0",
        namespace,
        &other,
        &ports,
        "127.0.0.1:9",
    ));

    // The job as shipped, its discovery replaced by those targets.
    let mut config = d.scrape.clone();
    let job = &mut config["scrape_configs"][0];
    assert_eq!(job["job_name"], "fleetsim");
    job.as_object_mut().unwrap().remove("kubernetes_sd_configs");
    job["static_configs"] = json!(targets);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let out = common::promtool()
        .args(["check", "config"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "{}",
        describe("promtool check config", &out)
    );

    let prometheus = common::prometheus::Prometheus::start(dir, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (active, dropped) = loop {
        let data = prometheus.api("/api/v1/targets?state=any");
        let active = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let dropped = data["droppedTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // Every target kept has been scraped once (its health is known).
        if !active.is_empty() && active.iter().all(|t| t["health"] != "unknown") {
            break (active, dropped);
        }
        assert!(
            Instant::now() < deadline,
            "the targets were not scraped within 60 s: {data}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for target in &active {
        assert_eq!(target["health"], "up", "{target}");
    }
    let mut instances: Vec<Value> = active.iter().map(|t| t["labels"].clone()).collect();
    instances.sort_by_key(|l| l["instance"].as_str().unwrap_or("").to_string());
    let expected: Vec<Value> = [0, shards - 1]
        .iter()
        .map(|o| json!({"job": "fleetsim", "instance": format!("fleetsim-{o}"), "namespace": namespace}))
        .collect();
    assert_eq!(instances, expected);
    assert_eq!(
        dropped.len(),
        3,
        "the other port, the pusher and grafana: {dropped:?}"
    );
}
