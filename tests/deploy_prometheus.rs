//! Static checks of `deploy/prometheus` (and its Prometheus Operator copy):
//! the alert rules load and pass their unit tests (`promtool`, from Debian's
//! `prometheus` package; a missing promtool fails, never skips), every alert
//! has a firing and a quiet test, and the rules name only exported metrics.

use std::collections::BTreeSet;

mod common;

use common::deploy::*;
use common::monitoring::*;

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

#[test]
fn publish_latency_has_an_alert() {
    assert!(
        rules().iter().any(|r| r["expr"]
            .as_str()
            .is_some_and(|e| e.contains("vitalstream_publish_latency_seconds_bucket"))),
        "an alert rule watches the publish latency histogram"
    );
}

#[test]
fn the_prometheus_rule_manifest_carries_the_rules_unchanged() {
    let rule = k8s_object("PrometheusRule");
    assert_eq!(
        rule["spec"]["groups"],
        yaml("prometheus/rules.yml")["groups"],
        "deploy/k8s/monitoring/prometheusrule.yaml and deploy/prometheus/rules.yml differ: copy the groups"
    );
}

#[test]
fn rules_use_only_exported_metrics() {
    assert_exported("rules.yml", &rule_metric_names());
}

#[test]
fn metric_names_are_extracted_from_promql() {
    let names = metric_names_in(
        r#"histogram_quantile(0.95, sum by (le) (rate(vitalstream_publish_latency_seconds_bucket{job="vitalstream",instance=~"vitalstream-1:9464"}[5m])))
           / on() my_vitalstream_other + vitalstream_readings_consumed_total + rate(process_cpu_seconds_total[1m])"#,
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "process_cpu_seconds_total".to_owned(),
            "vitalstream_publish_latency_seconds".to_owned(),
            "vitalstream_readings_consumed_total".to_owned(),
        ])
    );
}
