//! Static checks of the docker compose stack and the image: a KRaft Kafka,
//! two vitalstream instances in one consumer group, Prometheus scraping both,
//! Grafana; container health checked by the binary itself.

use std::collections::BTreeSet;

mod common;

use common::deploy::*;
use common::monitoring::*;
use serde_norway::Value as Yaml;

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

    let file_group = config_string("kafka.group_id");
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

/// The runtime image has no curl: `vitalstream healthcheck` asks /readyz.
#[test]
fn container_health_is_checked_by_the_binary() {
    let dockerfile = read("Dockerfile");
    let healthcheck = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        healthcheck.contains(r#"CMD ["vitalstream", "healthcheck""#),
        "the Dockerfile's HEALTHCHECK runs vitalstream healthcheck: {healthcheck:?}"
    );
    let compose = compose();
    for name in ["vitalstream-1", "vitalstream-2"] {
        let test: Vec<&str> = compose["services"][name]["healthcheck"]["test"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has a healthcheck"))
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(
            test.get(..3),
            Some(&["CMD", "vitalstream", "healthcheck"][..]),
            "{name} checks its health with the binary: {test:?}"
        );
    }
}
