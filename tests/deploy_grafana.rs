//! Static checks of the Grafana dashboard and its provisioning: the
//! provisioned datasource, job/namespace/instance variables on every query,
//! the process resource panels, and only exported metrics (checked against a
//! live scrape in `tests/observability.rs` too).

mod common;

use common::deploy::*;
use common::monitoring::*;

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

/// One Grafana and Prometheus often watch several deployments (staging and
/// production namespaces, other jobs): every query filters by them.
#[test]
fn every_query_filters_by_job_namespace_and_instance() {
    let dashboard = dashboard();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for name in ["job", "namespace", "instance"] {
        assert!(variables.contains(&name), "a {name} variable");
    }
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for filter in [
                r#"job=~"$job""#,
                r#"namespace=~"$namespace""#,
                r#"instance=~"$instance""#,
            ] {
                let selectors = expr.matches('{').count();
                assert_eq!(
                    expr.matches(filter).count(),
                    selectors,
                    "panel {}: every selector of `{expr}` has {filter}",
                    panel["title"]
                );
            }
        }
    }
}

#[test]
fn dashboard_shows_process_memory_cpu_and_open_files() {
    let names = dashboard_metric_names();
    for metric in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(names.contains(metric), "a panel queries {metric}");
    }
}

#[test]
fn dashboard_uses_only_exported_metrics() {
    assert_exported("the dashboard", &dashboard_metric_names());
}
