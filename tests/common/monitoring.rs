//! Monitoring files of `deploy/` as data: the metric families the Grafana
//! dashboard and the Prometheus alert rules query, and YAML/JSON readers.
//! Shared by the static deploy checks and the live-scrape test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

// ---------------------------------------------------------------------------
// Metric names referenced by the dashboard and the rules
// ---------------------------------------------------------------------------

/// Metric families named in a PromQL expression: every `vitalstream_…` and
/// `process_…` token, with a histogram's `_bucket`, `_sum` or `_count` suffix
/// removed.
pub fn metric_names_in(expr: &str) -> BTreeSet<String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    for prefix in ["vitalstream_", "process_"] {
        let mut rest = expr;
        let mut consumed = 0;
        while let Some(at) = rest.find(prefix) {
            let start = consumed + at;
            let preceded_by_name = expr[..start].chars().next_back().is_some_and(is_name_char);
            let tail = &expr[start..];
            let len = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if !preceded_by_name && len > prefix.len() {
                names.insert(family_name(&tail[..len]).to_owned());
            }
            consumed = start + len.max(prefix.len());
            rest = &expr[consumed..];
        }
    }
    names
}

/// A series name's metric family: histogram series lose their suffix.
pub fn family_name(series: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| series.strip_suffix(suffix))
        .unwrap_or(series)
}

/// Metric families referenced by the Grafana dashboard: panel query
/// expressions (`targets[].expr`, rows' nested panels included) and the
/// template variables' queries.
pub fn dashboard_metric_names() -> BTreeSet<String> {
    let dashboard = dashboard();
    let mut names = BTreeSet::new();
    for expr in dashboard_exprs(&dashboard) {
        names.extend(metric_names_in(&expr));
    }
    names
}

/// Metric families referenced by the Prometheus alert rules (`expr` of every
/// rule in `deploy/prometheus/rules.yml`).
pub fn rule_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for rule in rules() {
        let expr = rule["expr"].as_str().expect("every rule has an expr");
        names.extend(metric_names_in(expr));
    }
    names
}

pub fn dashboard_exprs(dashboard: &Json) -> Vec<String> {
    fn walk_panels(panels: &Json, out: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_owned());
                }
            }
            walk_panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk_panels(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match &var["query"] {
            Json::String(q) => out.push(q.clone()),
            q => out.extend(q["query"].as_str().map(str::to_owned)),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

pub fn read(rel: &str) -> String {
    let path = deploy_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// All documents of a (possibly multi-document) YAML file; empty documents
/// (a trailing `---`) are left out.
pub fn yaml_docs_of(path: &Path) -> Vec<Yaml> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            Yaml::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

pub fn yaml(rel: &str) -> Yaml {
    let mut docs = yaml_docs_of(&deploy_dir().join(rel));
    assert_eq!(docs.len(), 1, "{rel} holds one YAML document");
    docs.remove(0)
}

pub fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            out.push(path);
        }
    }
}

pub fn dashboard() -> Json {
    serde_json::from_str(&read("grafana/dashboards/vitalstream.json"))
        .expect("the dashboard is valid JSON")
}

pub fn rules() -> Vec<Yaml> {
    let doc = yaml("prometheus/rules.yml");
    let groups = doc["groups"].as_sequence().expect("rules.yml has groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("group has rules").clone())
        .collect()
}
