//! Static checks of `deploy/k8s`: every YAML file under `deploy/` parses; the
//! manifests are well-formed objects listed by their kustomization and agree
//! with each other (probe ports, Service port, autoscaler target and limits,
//! broker address, consumer group, partition count, ServiceMonitor port);
//! pods get stable transactional ids and no Service environment variables.

use std::collections::BTreeSet;

mod common;

use common::deploy::*;
use common::monitoring::*;

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
        "k8s/statefulset.yaml",
        "k8s/service.yaml",
        "k8s/monitoring/kustomization.yaml",
        "k8s/monitoring/servicemonitor.yaml",
        "k8s/monitoring/prometheusrule.yaml",
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

fn assert_named_objects(dir: &str) -> Vec<(String, serde_norway::Value)> {
    let objects = k8s_objects_in(dir);
    assert!(!objects.is_empty(), "deploy/{dir} has manifests");
    for (file, doc) in &objects {
        for field in ["apiVersion", "kind"] {
            assert!(
                doc[field].as_str().is_some(),
                "{dir}/{file}: a document without {field}"
            );
        }
        assert!(
            doc["metadata"]["name"]
                .as_str()
                .is_some_and(|n| !n.is_empty()),
            "{dir}/{file}: {} without metadata.name",
            doc["kind"].as_str().unwrap_or("?")
        );
    }
    objects
}

#[test]
fn k8s_manifests_are_named_objects_and_kustomizations_list_them() {
    let objects = assert_named_objects("k8s");
    let resources = kustomization_resources("k8s");
    for resource in &resources {
        assert!(
            deploy_dir().join("k8s").join(resource).is_file(),
            "kustomization lists {resource}, which does not exist"
        );
    }
    for required in [
        "configmap.yaml",
        "statefulset.yaml",
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
        .filter(|a| resources.contains(**a))
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

    // The Prometheus Operator objects need its CRDs: a kustomization of their own.
    let monitoring = assert_named_objects("k8s/monitoring");
    let resources = kustomization_resources("k8s/monitoring");
    for (file, _) in &monitoring {
        assert!(
            resources.contains(file.as_str()),
            "{file} is in deploy/k8s/monitoring but not in its kustomization.yaml"
        );
    }
}

#[test]
fn statefulset_probes_health_endpoints_on_the_service_port() {
    let workload = workload();
    let service = k8s_object("Service");
    let container = vitalstream_container(&workload);
    let pod = &workload["spec"]["template"]["spec"];

    let liveness = &container["livenessProbe"]["httpGet"];
    let readiness = &container["readinessProbe"]["httpGet"];
    let startup = &container["startupProbe"];
    assert_eq!(liveness["path"].as_str(), Some("/healthz"));
    assert_eq!(readiness["path"].as_str(), Some("/readyz"));
    assert_eq!(startup["httpGet"]["path"].as_str(), Some("/healthz"));
    let startup_budget_s = startup["periodSeconds"].as_u64().unwrap_or(10)
        * startup["failureThreshold"].as_u64().unwrap_or(3);
    let startup_timeout_s = config_toml()["kafka"]
        .get("startup_timeout_ms")
        .and_then(toml::Value::as_integer)
        .map_or(60, |ms| (ms / 1000).unsigned_abs());
    assert!(
        startup_budget_s > startup_timeout_s,
        "the startup probe ({startup_budget_s} s) outlasts kafka.startup_timeout_ms ({startup_timeout_s} s)"
    );
    let live_port = resolve_port(&liveness["port"], &container);
    let ready_port = resolve_port(&readiness["port"], &container);
    let startup_port = resolve_port(&startup["httpGet"]["port"], &container);
    assert_eq!(live_port, ready_port, "the probes use the metrics port");
    assert_eq!(startup_port, ready_port, "the probes use the metrics port");

    let service_ports = service["spec"]["ports"]
        .as_sequence()
        .expect("service ports");
    assert!(
        service_ports
            .iter()
            .any(|p| resolve_port(&p["targetPort"], &container) == ready_port),
        "the Service exposes the port the probes use ({ready_port})"
    );
    assert_eq!(
        workload["spec"]["serviceName"], service["metadata"]["name"],
        "the StatefulSet's governing Service exists"
    );

    let listen = container_env(&container, "VITALSTREAM_HTTP__LISTEN_ADDR")
        .expect("the container sets VITALSTREAM_HTTP__LISTEN_ADDR");
    assert_eq!(
        listen,
        format!("0.0.0.0:{ready_port}"),
        "the program listens on all interfaces on the probed port"
    );
    let annotations = &workload["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(ready_port.to_string().as_str()),
        "the scrape annotation names the metrics port"
    );

    let selector = &service["spec"]["selector"];
    let labels = &workload["spec"]["template"]["metadata"]["labels"];
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
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert!(
        pod["terminationGracePeriodSeconds"]
            .as_u64()
            .is_some_and(|s| s >= 30),
        "SIGTERM gets time to finish the batch and commit"
    );
}

/// A Service named vitalstream would inject VITALSTREAM_SERVICE_HOST,
/// VITALSTREAM_PORT, ... into the pods (the loader ignores them too).
#[test]
fn pods_get_no_service_link_variables() {
    assert_eq!(
        workload()["spec"]["template"]["spec"]["enableServiceLinks"].as_bool(),
        Some(false)
    );
}

/// A restarted pod must keep its transactional id so it fences its
/// predecessor's open transaction at once (DESIGN.md §6).
#[test]
fn each_pod_has_a_stable_transactional_id_from_its_name() {
    let container = vitalstream_container(&workload());
    let pod_name = container_env_entry(&container, "POD_NAME").expect("POD_NAME is set");
    assert_eq!(
        pod_name["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.name"),
        "POD_NAME comes from the downward API"
    );
    let txn = container_env(&container, "VITALSTREAM_KAFKA__TRANSACTIONAL_ID")
        .expect("the transactional id is set");
    assert!(
        txn.contains("$(POD_NAME)"),
        "the transactional id is derived from the pod name: {txn}"
    );
    let env: Vec<&str> = container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    let defined = env.iter().position(|n| *n == "POD_NAME");
    let used = env
        .iter()
        .position(|n| *n == "VITALSTREAM_KAFKA__TRANSACTIONAL_ID");
    assert!(
        defined < used,
        "POD_NAME is defined before the variable that refers to it"
    );
}

#[test]
fn autoscalers_agree_with_the_workload_topic_group_and_brokers() {
    let raw_topic = config_string("topics.raw");
    let group = config_string("kafka.group_id");
    let partitions = topic_partitions(&raw_topic);

    let workload = workload();
    let brokers = container_env(
        &vitalstream_container(&workload),
        "VITALSTREAM_KAFKA__BROKERS",
    )
    .expect("the container sets VITALSTREAM_KAFKA__BROKERS");

    let keda = k8s_object("ScaledObject");
    let target = &keda["spec"]["scaleTargetRef"];
    assert_eq!(target["name"], workload["metadata"]["name"]);
    assert_eq!(
        target["kind"].as_str(),
        Some("StatefulSet"),
        "KEDA scales the StatefulSet"
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
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(target["name"], workload["metadata"]["name"]);
    assert_eq!(
        target["kind"].as_str(),
        Some("StatefulSet"),
        "the HPA scales the StatefulSet"
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

#[test]
fn the_service_monitor_scrapes_the_services_metrics_port() {
    let monitor = k8s_object("ServiceMonitor");
    let service = k8s_object("Service");
    let labels = &service["metadata"]["labels"];
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("ServiceMonitor selects by labels")
    {
        assert_eq!(
            &labels[key.as_str().expect("label key")],
            value,
            "the ServiceMonitor selects the Service"
        );
    }
    let port_names: BTreeSet<&str> = service["spec"]["ports"]
        .as_sequence()
        .expect("service ports")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for endpoint in monitor["spec"]["endpoints"]
        .as_sequence()
        .expect("endpoints")
    {
        let port = endpoint["port"].as_str().expect("endpoint port name");
        assert!(
            port_names.contains(port),
            "the Service has a port named {port}"
        );
        assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
    }
    // The instance-down rule selects job="vitalstream": the Service's name.
    assert_eq!(service["metadata"]["name"].as_str(), Some("vitalstream"));
}
