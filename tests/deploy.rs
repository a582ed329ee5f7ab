//! Static checks of `deploy/`: what an operator would trip over before any
//! container starts.
//!
//! - The Prometheus rules load, their unit tests pass and the compose
//!   Prometheus config is valid (`promtool`, from Debian's `prometheus`
//!   package; missing promtool fails the test, it never skips).
//! - Every YAML file parses; the Kubernetes manifests are well-formed objects
//!   that agree with each other (probe ports, Service port, autoscaler limits,
//!   broker address, consumer group, partition count).
//! - The compose stack has a KRaft Kafka, two vitalstream instances in one
//!   consumer group, Prometheus scraping both, and Grafana.
//! - The dashboard and the alert rules name only metrics the program exports.
//!   [`dashboard_metric_names`] and [`rule_metric_names`] extract the names;
//!   They are checked against the program's own metric list here and
//!   against a live scrape in `tests/observability.rs`.
//! - The deployed config file is accepted by the program's own config loader,
//!   and every `VITALSTREAM_*` override used by a deployment names a key of it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

mod common;

use common::monitoring::*;
use serde_norway::Value as Yaml;

/// Every metric family the program exports (histograms by their base name),
/// from the program's own list.
fn exported() -> BTreeSet<&'static str> {
    vitalstream::telemetry::DESCRIBED
        .iter()
        .map(|(name, _)| *name)
        .collect()
}

const PROMTOOL_HINT: &str = "promtool is required for the deploy checks: \
    `apt-get install -y prometheus` (Debian's package ships /usr/bin/promtool), \
    or set PROMTOOL_BIN to a promtool binary.";

/// The compose file with YAML merge keys (`<<: *anchor`) resolved, also
/// nested ones (an anchor that merges another anchor).
fn compose() -> Yaml {
    let mut doc = yaml("docker-compose.yml");
    for _ in 0..8 {
        let before = doc.clone();
        doc.apply_merge().expect("merge keys resolve");
        if doc == before {
            return doc;
        }
    }
    panic!("docker-compose.yml: merge keys nest too deeply");
}

/// Every Kubernetes object under deploy/k8s, with the file it came from.
fn k8s_objects() -> Vec<(String, Yaml)> {
    let mut files = Vec::new();
    yaml_files(&deploy_dir().join("k8s"), &mut files);
    files.sort();
    files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .flat_map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            yaml_docs_of(p)
                .into_iter()
                .map(move |doc| (name.clone(), doc))
        })
        .collect()
}

fn k8s_object(kind: &str) -> Yaml {
    let mut found: Vec<Yaml> = k8s_objects()
        .into_iter()
        .filter(|(_, doc)| doc["kind"].as_str() == Some(kind))
        .map(|(_, doc)| doc)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind} in deploy/k8s");
    found.remove(0)
}

/// `section.key` of every key set in a TOML file (headers and `key = value`
/// lines; inline tables count as one key). Enough for this file's layout.
fn toml_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.trim().to_owned();
        } else if let Some((key, _)) = line.split_once('=') {
            keys.insert(format!("{section}.{}", key.trim().trim_matches('"')));
        }
    }
    keys
}

/// The quoted string value of `section.key` in a TOML file.
fn toml_string(text: &str, dotted: &str) -> String {
    let (want_section, want_key) = dotted.rsplit_once('.').expect("section.key");
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.trim();
        } else if let Some((key, value)) = line.split_once('=')
            && section == want_section
            && key.trim() == want_key
        {
            let value = value.split('#').next().unwrap_or_default().trim();
            return value.trim_matches('"').to_owned();
        }
    }
    panic!("{dotted} is not set in the config file");
}

/// `VITALSTREAM_KAFKA__CLIENT_ID` → `kafka.client_id`.
fn env_override_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("VITALSTREAM_")?;
    Some(
        rest.to_ascii_lowercase()
            .split("__")
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// Partitions `deploy/kafka/create-topics.sh` gives a topic.
fn topic_partitions(topic: &str) -> u64 {
    let script = read("kafka/create-topics.sh");
    script
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("create") && words.next() == Some(topic))
                .then(|| words.next()?.parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("create-topics.sh creates {topic} with a partition count"))
}

// ---------------------------------------------------------------------------
// promtool
// ---------------------------------------------------------------------------

fn promtool() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMTOOL_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PROMTOOL_BIN={} does not exist. {PROMTOOL_HINT}",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("promtool not found on PATH. {PROMTOOL_HINT}"))
}

/// Runs promtool in deploy/prometheus (so relative rule paths resolve as in
/// the container) and fails with its output unless it succeeds.
fn run_promtool(args: &[&str]) {
    let tool = promtool();
    let out = Command::new(&tool)
        .args(args)
        .current_dir(deploy_dir().join("prometheus"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}. {PROMTOOL_HINT}", tool.display()));
    assert!(
        out.status.success(),
        "promtool {} failed ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_load() {
    run_promtool(&["check", "rules", "rules.yml"]);
}

#[test]
fn alert_rule_unit_tests_pass() {
    run_promtool(&["test", "rules", "rules_test.yml"]);
}

/// Works offline: promtool validates the file and loads the rule files it
/// names (relative to the config file), but does not contact scrape targets.
#[test]
fn prometheus_config_is_valid() {
    run_promtool(&["check", "config", "prometheus.yml"]);
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let tests = yaml("prometheus/rules_test.yml");
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for test in tests["tests"]
        .as_sequence()
        .expect("rules_test.yml has tests")
    {
        for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_owned();
            let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected > 0 {
                fires.insert(name);
            } else {
                quiet.insert(name);
            }
        }
    }
    for rule in rules() {
        let alert = rule["alert"].as_str().expect("alerting rules only");
        assert!(fires.contains(alert), "no unit test where {alert} fires");
        assert!(
            quiet.contains(alert),
            "no unit test where {alert} stays quiet"
        );
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("warning" | "critical")),
            "{alert} has a severity label of warning or critical, got {severity:?}"
        );
        for annotation in ["summary", "description"] {
            assert!(
                rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{alert} has a {annotation} annotation"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// YAML and Kubernetes manifests
// ---------------------------------------------------------------------------

#[test]
fn every_yaml_file_parses() {
    let mut files = Vec::new();
    yaml_files(&deploy_dir(), &mut files);
    files.sort();
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(deploy_dir())
                .expect("under deploy/")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in [
        "docker-compose.yml",
        "prometheus/prometheus.yml",
        "prometheus/rules.yml",
        "prometheus/rules_test.yml",
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/vitalstream.yml",
        "k8s/kustomization.yaml",
        "k8s/deployment.yaml",
        "k8s/service.yaml",
    ] {
        assert!(names.contains(expected), "deploy/{expected} exists");
    }
    for file in &files {
        assert!(
            !yaml_docs_of(file).is_empty(),
            "{} holds a YAML document",
            file.display()
        );
    }
}

#[test]
fn k8s_manifests_are_named_objects_and_kustomization_lists_them() {
    let objects = k8s_objects();
    assert!(!objects.is_empty(), "deploy/k8s has manifests");
    for (file, doc) in &objects {
        for field in ["apiVersion", "kind"] {
            assert!(
                doc[field].as_str().is_some(),
                "{file}: a document without {field}"
            );
        }
        assert!(
            doc["metadata"]["name"]
                .as_str()
                .is_some_and(|n| !n.is_empty()),
            "{file}: {} without metadata.name",
            doc["kind"].as_str().unwrap_or("?")
        );
    }

    let kustomization = yaml("k8s/kustomization.yaml");
    assert_eq!(kustomization["kind"].as_str(), Some("Kustomization"));
    let resources: BTreeSet<&str> = kustomization["resources"]
        .as_sequence()
        .expect("kustomization lists resources")
        .iter()
        .map(|r| r.as_str().expect("resource path"))
        .collect();
    for resource in &resources {
        assert!(
            deploy_dir().join("k8s").join(resource).is_file(),
            "kustomization lists {resource}, which does not exist"
        );
    }
    for required in [
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "pdb.yaml",
    ] {
        assert!(
            resources.contains(required),
            "kustomization lists {required}"
        );
    }
    let autoscalers = ["keda-scaledobject.yaml", "hpa.yaml"];
    let listed = autoscalers
        .iter()
        .filter(|a| resources.contains(*a))
        .count();
    assert_eq!(
        listed, 1,
        "kustomization lists exactly one autoscaler of {autoscalers:?}: both would fight over the replica count"
    );
    for (file, _) in &objects {
        assert!(
            resources.contains(file.as_str()) || autoscalers.contains(&file.as_str()),
            "{file} is in deploy/k8s but not in kustomization.yaml"
        );
    }
}

/// The container port a probe or Service refers to, by number or by name.
fn resolve_port(port: &Yaml, container: &Yaml) -> u64 {
    if let Some(number) = port.as_u64() {
        return number;
    }
    let name = port.as_str().expect("a port is a number or a name");
    container["ports"]
        .as_sequence()
        .expect("container declares ports")
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("container has no port named {name}"))
}

fn container_env(container: &Yaml, name: &str) -> Option<String> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

fn vitalstream_container(deployment: &Yaml) -> Yaml {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("deployment has containers")
        .iter()
        .find(|c| c["name"].as_str() == Some("vitalstream"))
        .expect("a container named vitalstream")
        .clone()
}

#[test]
fn deployment_probes_health_endpoints_on_the_service_port() {
    let deployment = k8s_object("Deployment");
    let service = k8s_object("Service");
    let container = vitalstream_container(&deployment);

    let liveness = &container["livenessProbe"]["httpGet"];
    let readiness = &container["readinessProbe"]["httpGet"];
    assert_eq!(
        liveness["path"].as_str(),
        Some("/healthz"),
        "liveness probes /healthz"
    );
    assert_eq!(
        readiness["path"].as_str(),
        Some("/readyz"),
        "readiness probes /readyz"
    );
    let live_port = resolve_port(&liveness["port"], &container);
    let ready_port = resolve_port(&readiness["port"], &container);
    assert_eq!(live_port, ready_port, "both probes use the metrics port");

    let service_ports = service["spec"]["ports"]
        .as_sequence()
        .expect("service ports");
    assert!(
        service_ports
            .iter()
            .any(|p| resolve_port(&p["targetPort"], &container) == ready_port),
        "the Service exposes the port the probes use ({ready_port})"
    );

    let listen = container_env(&container, "VITALSTREAM_HTTP__LISTEN_ADDR")
        .expect("the container sets VITALSTREAM_HTTP__LISTEN_ADDR");
    assert_eq!(
        listen,
        format!("0.0.0.0:{ready_port}"),
        "the program listens on all interfaces on the probed port"
    );
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(ready_port.to_string().as_str()),
        "the scrape annotation names the metrics port"
    );

    let selector = &service["spec"]["selector"];
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in selector.as_mapping().expect("service selector") {
        assert_eq!(
            &labels[key.as_str().expect("label key")],
            value,
            "Service selects the pods"
        );
    }

    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    let pod_security = &deployment["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"].as_bool(), Some(true));
    assert!(
        deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .is_some_and(|s| s >= 30),
        "SIGTERM gets time to finish the batch and commit"
    );
}

#[test]
fn autoscalers_agree_with_the_topic_group_and_brokers() {
    let config = read("config/vitalstream.toml");
    let raw_topic = toml_string(&config, "topics.raw");
    let group = toml_string(&config, "kafka.group_id");
    let partitions = topic_partitions(&raw_topic);

    let deployment = k8s_object("Deployment");
    let brokers = container_env(
        &vitalstream_container(&deployment),
        "VITALSTREAM_KAFKA__BROKERS",
    )
    .expect("the container sets VITALSTREAM_KAFKA__BROKERS");

    let keda = k8s_object("ScaledObject");
    assert_eq!(
        keda["spec"]["scaleTargetRef"]["name"], deployment["metadata"]["name"],
        "KEDA scales the Deployment"
    );
    let max = keda["spec"]["maxReplicaCount"]
        .as_u64()
        .expect("maxReplicaCount");
    assert!(
        max <= partitions,
        "KEDA max {max} replicas, {raw_topic} has {partitions} partitions"
    );
    let triggers = keda["spec"]["triggers"]
        .as_sequence()
        .expect("KEDA triggers");
    let kafka = triggers
        .iter()
        .find(|t| t["type"].as_str() == Some("kafka"))
        .expect("a kafka trigger");
    let meta = &kafka["metadata"];
    assert_eq!(meta["topic"].as_str(), Some(raw_topic.as_str()));
    assert_eq!(meta["consumerGroup"].as_str(), Some(group.as_str()));
    assert_eq!(meta["bootstrapServers"].as_str(), Some(brokers.as_str()));

    let hpa = k8s_object("HorizontalPodAutoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"], deployment["metadata"]["name"],
        "the HPA scales the Deployment"
    );
    let max = hpa["spec"]["maxReplicas"].as_u64().expect("maxReplicas");
    assert!(
        max <= partitions,
        "HPA max {max} replicas, {raw_topic} has {partitions} partitions"
    );

    let pdb = k8s_object("PodDisruptionBudget");
    assert!(
        pdb["spec"]["maxUnavailable"].as_u64() == Some(1)
            || pdb["spec"]["minAvailable"].as_u64() == Some(1),
        "the PDB keeps the group from losing every consumer at once"
    );
}

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

#[test]
fn configmap_carries_the_config_file() {
    let configmap = k8s_object("ConfigMap");
    let embedded = configmap["data"]["vitalstream.toml"]
        .as_str()
        .expect("ConfigMap has data.vitalstream.toml");
    assert!(
        embedded == read("config/vitalstream.toml"),
        "deploy/k8s/configmap.yaml and deploy/config/vitalstream.toml differ: edit both"
    );
}

#[test]
fn deployed_config_is_accepted_by_the_program() {
    let text = read("config/vitalstream.toml");
    if let Err(e) = vitalstream::config::Config::from_toml(&text) {
        panic!("deploy/config/vitalstream.toml is rejected by the program: {e}");
    }
}

#[test]
fn env_overrides_name_keys_of_the_config_file() {
    let keys = toml_keys(&read("config/vitalstream.toml"));
    let mut vars: Vec<(String, String)> = Vec::new();

    let compose = compose();
    for (name, service) in compose["services"].as_mapping().expect("services") {
        if let Some(env) = service["environment"].as_mapping() {
            for (var, _) in env {
                let var = var.as_str().expect("env name").to_owned();
                vars.push((
                    format!("compose service {}", name.as_str().unwrap_or("?")),
                    var,
                ));
            }
        }
    }
    let deployment = k8s_object("Deployment");
    for e in vitalstream_container(&deployment)["env"]
        .as_sequence()
        .expect("env")
    {
        vars.push((
            "k8s Deployment".into(),
            e["name"].as_str().expect("env name").into(),
        ));
    }
    for line in read("Dockerfile").lines() {
        if let Some(rest) = line.trim().strip_prefix("ENV ") {
            let var = rest.split(['=', ' ']).next().expect("ENV name");
            vars.push(("Dockerfile".into(), var.into()));
        }
    }

    let overrides: Vec<_> = vars
        .into_iter()
        .filter_map(|(place, var)| Some((place, env_override_key(&var)?, var)))
        .collect();
    assert!(
        !overrides.is_empty(),
        "the deployments set VITALSTREAM_* overrides"
    );
    for (place, key, var) in overrides {
        assert!(
            keys.contains(&key),
            "{place}: {var} overrides `{key}`, which deploy/config/vitalstream.toml does not set (typo?)"
        );
    }
}

// ---------------------------------------------------------------------------
// docker compose
// ---------------------------------------------------------------------------

fn env_of(service: &Yaml, var: &str) -> Option<String> {
    match &service["environment"] {
        Yaml::Mapping(map) => map.get(var).map(|v| match v {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            other => panic!("{var}: unexpected value {other:?}"),
        }),
        Yaml::Sequence(list) => list.iter().find_map(|item| {
            let (k, v) = item.as_str()?.split_once('=')?;
            (k == var).then(|| v.to_owned())
        }),
        _ => None,
    }
}

fn depends_on_condition<'a>(service: &'a Yaml, on: &str) -> Option<&'a str> {
    service["depends_on"][on]["condition"].as_str()
}

#[test]
fn compose_runs_kraft_kafka_two_instances_and_monitoring() {
    let compose = compose();
    let services = &compose["services"];

    let kafka = &services["kafka"];
    assert!(
        kafka["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("apache/kafka:")),
        "kafka runs the apache/kafka image"
    );
    let roles = env_of(kafka, "KAFKA_PROCESS_ROLES").expect("KAFKA_PROCESS_ROLES");
    let roles: BTreeSet<&str> = roles.split(',').map(str::trim).collect();
    assert_eq!(
        roles,
        BTreeSet::from(["broker", "controller"]),
        "a combined KRaft node"
    );
    for var in [
        "KAFKA_NODE_ID",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
        "KAFKA_CONTROLLER_LISTENER_NAMES",
        "KAFKA_LISTENERS",
        "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_INTER_BROKER_LISTENER_NAME",
    ] {
        assert!(env_of(kafka, var).is_some(), "kafka sets {var}");
    }
    for var in [
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ] {
        assert_eq!(
            env_of(kafka, var).as_deref(),
            Some("1"),
            "single node: {var}=1"
        );
    }
    assert!(
        kafka["healthcheck"]["test"].as_sequence().is_some(),
        "kafka has a healthcheck"
    );
    assert_eq!(
        depends_on_condition(&services["kafka-init"], "kafka"),
        Some("service_healthy"),
        "topics are created once the broker is healthy"
    );

    let config = read("config/vitalstream.toml");
    let file_group = toml_string(&config, "kafka.group_id");
    let mut groups = BTreeSet::new();
    let mut scrape_targets = BTreeSet::new();
    for name in ["vitalstream-1", "vitalstream-2"] {
        let service = &services[name];
        assert_eq!(
            service["build"]["dockerfile"].as_str(),
            Some("deploy/Dockerfile"),
            "{name} is built from deploy/Dockerfile"
        );
        assert_eq!(
            depends_on_condition(service, "kafka-init"),
            Some("service_completed_successfully"),
            "{name} starts after the topics exist"
        );
        groups.insert(env_of(service, "VITALSTREAM_KAFKA__GROUP_ID").unwrap_or(file_group.clone()));
        let listen = env_of(service, "VITALSTREAM_HTTP__LISTEN_ADDR")
            .expect("instances listen beyond loopback");
        let port = listen.rsplit(':').next().expect("host:port");
        scrape_targets.insert(format!("{name}:{port}"));
    }
    assert_eq!(
        groups.len(),
        1,
        "both instances join one consumer group: {groups:?}"
    );
    let init_group = env_of(&services["kafka-init"], "GROUP_ID").expect("kafka-init GROUP_ID");
    assert!(
        groups.contains(&init_group),
        "kafka-init creates the state changelog of group {init_group}, the instances join {groups:?}"
    );

    let loadgen = &services["loadgen"];
    assert!(
        loadgen["profiles"]
            .as_sequence()
            .is_some_and(|p| p.iter().any(|x| x.as_str() == Some("load"))),
        "loadgen only runs with --profile load"
    );

    assert!(
        services["prometheus"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("prom/prometheus"))
    );
    assert!(
        services["grafana"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("grafana/grafana"))
    );

    let prometheus = yaml("prometheus/prometheus.yml");
    let scraped: BTreeSet<String> = prometheus["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .filter(|job| job["job_name"].as_str() == Some("vitalstream"))
        .flat_map(|job| {
            job["static_configs"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|sc| sc["targets"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        scraped, scrape_targets,
        "Prometheus scrapes both instances on their listen port"
    );
}

// ---------------------------------------------------------------------------
// Grafana and metric names
// ---------------------------------------------------------------------------

#[test]
fn dashboard_queries_the_provisioned_datasource() {
    let dashboard = dashboard();
    let provisioned = yaml("grafana/provisioning/datasources/prometheus.yml");
    let uid = provisioned["datasources"][0]["uid"]
        .as_str()
        .expect("datasource uid");
    let variable = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(
        variable["current"]["value"].as_str(),
        Some(uid),
        "defaults to the provisioned datasource"
    );
    let var_ref = format!("${{{}}}", variable["name"].as_str().expect("variable name"));
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 12, "the dashboard has its panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"].as_str(),
            Some(var_ref.as_str()),
            "panel {} uses the datasource variable",
            panel["title"]
        );
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "panel {} has queries",
            panel["title"]
        );
    }
    let dashboards_provider = yaml("grafana/provisioning/dashboards/vitalstream.yml");
    assert!(
        dashboards_provider["providers"][0]["options"]["path"]
            .as_str()
            .is_some()
    );
}

fn assert_exported(what: &str, names: &BTreeSet<String>) {
    assert!(!names.is_empty(), "{what} references vitalstream metrics");
    let exported = exported();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "{what} references metrics the program does not export: {unknown:?}"
    );
}

#[test]
fn dashboard_uses_only_exported_metrics() {
    assert_exported("the dashboard", &dashboard_metric_names());
}

#[test]
fn rules_use_only_exported_metrics() {
    assert_exported("rules.yml", &rule_metric_names());
}

#[test]
fn metric_names_are_extracted_from_promql() {
    let names = metric_names_in(
        r#"histogram_quantile(0.95, sum by (le) (rate(vitalstream_publish_latency_seconds_bucket{job="vitalstream",instance=~"vitalstream-1:9464"}[5m])))
           / on() my_vitalstream_other + vitalstream_readings_consumed_total"#,
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "vitalstream_publish_latency_seconds".to_owned(),
            "vitalstream_readings_consumed_total".to_owned(),
        ])
    );
}
