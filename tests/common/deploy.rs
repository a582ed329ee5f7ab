//! `deploy/` as data for the static deploy checks (`tests/deploy_*.rs`): the
//! Kubernetes objects, the compose file, the container config file (parsed
//! with the toml crate) and promtool.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_norway::Value as Yaml;

use super::monitoring::*;

/// Every metric family the program exports (histograms by their base name),
/// from the program's own lists.
pub fn exported() -> BTreeSet<&'static str> {
    vitalstream::telemetry::DESCRIBED
        .iter()
        .map(|(name, _)| *name)
        .chain(vitalstream::telemetry::PROCESS_METRICS)
        .collect()
}

/// Fails unless every name of `names` is [`exported`].
pub fn assert_exported(what: &str, names: &BTreeSet<String>) {
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

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

/// Every Kubernetes object in the files of `deploy/<dir>` (not its
/// subdirectories, kustomization.yaml left out), with the file it came from.
pub fn k8s_objects_in(dir: &str) -> Vec<(String, Yaml)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join(dir))
        .unwrap_or_else(|e| panic!("listing deploy/{dir}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
        .iter()
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

/// The one object of `kind` in `deploy/k8s` or `deploy/k8s/monitoring`.
pub fn k8s_object(kind: &str) -> Yaml {
    let mut found: Vec<Yaml> = k8s_objects_in("k8s")
        .into_iter()
        .chain(k8s_objects_in("k8s/monitoring"))
        .filter(|(_, doc)| doc["kind"].as_str() == Some(kind))
        .map(|(_, doc)| doc)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind} in deploy/k8s");
    found.remove(0)
}

/// The workload running vitalstream.
pub fn workload() -> Yaml {
    k8s_object("StatefulSet")
}

/// The files a kustomization in `deploy/<dir>` lists under `resources`.
pub fn kustomization_resources(dir: &str) -> BTreeSet<String> {
    let kustomization = yaml(&format!("{dir}/kustomization.yaml"));
    assert_eq!(kustomization["kind"].as_str(), Some("Kustomization"));
    kustomization["resources"]
        .as_sequence()
        .expect("kustomization lists resources")
        .iter()
        .map(|r| r.as_str().expect("resource path").to_owned())
        .collect()
}

/// The container port a probe or Service refers to, by number or by name.
pub fn resolve_port(port: &Yaml, container: &Yaml) -> u64 {
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

/// The literal value of a container's env variable `name`.
pub fn container_env(container: &Yaml, name: &str) -> Option<String> {
    container_env_entry(container, name).and_then(|e| e["value"].as_str().map(str::to_owned))
}

/// A container's env entry `name` (with `value` or `valueFrom`).
pub fn container_env_entry(container: &Yaml, name: &str) -> Option<Yaml> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .cloned()
}

/// The container named vitalstream of a workload.
pub fn vitalstream_container(workload: &Yaml) -> Yaml {
    workload["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("the workload has containers")
        .iter()
        .find(|c| c["name"].as_str() == Some("vitalstream"))
        .expect("a container named vitalstream")
        .clone()
}

// ---------------------------------------------------------------------------
// docker compose
// ---------------------------------------------------------------------------

/// The compose file with YAML merge keys (`<<: *anchor`) resolved, also
/// nested ones (an anchor that merges another anchor).
pub fn compose() -> Yaml {
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

/// A compose service's environment variable, in map or list form.
pub fn env_of(service: &Yaml, var: &str) -> Option<String> {
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

// ---------------------------------------------------------------------------
// The container config file and topics
// ---------------------------------------------------------------------------

/// `deploy/config/vitalstream.toml`, parsed.
pub fn config_toml() -> toml::Table {
    read("config/vitalstream.toml")
        .parse()
        .expect("deploy/config/vitalstream.toml is TOML")
}

/// Every dotted key path set in a TOML table, tables and values alike
/// (`kafka`, `kafka.brokers`, `kafka.security.protocol`, ...).
pub fn toml_keys(table: &toml::Table) -> BTreeSet<String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if let toml::Value::Table(inner) = value {
                walk(&path, inner, out);
            }
            out.insert(path);
        }
    }
    let mut out = BTreeSet::new();
    walk("", table, &mut out);
    out
}

/// The string at `dotted` (`kafka.group_id`) of the config file.
pub fn config_string(dotted: &str) -> String {
    let table = config_toml();
    let mut value: Option<&toml::Value> = None;
    for part in dotted.split('.') {
        value = match value {
            None => table.get(part),
            Some(v) => v.get(part),
        };
    }
    value
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("{dotted} is not a string in the config file"))
        .to_owned()
}

/// `VITALSTREAM_KAFKA__CLIENT_ID` → `kafka.client_id`; `None` for a variable
/// that is not configuration (no prefix, or no `__`, which the loader ignores).
pub fn env_override_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("VITALSTREAM_")?;
    rest.contains("__").then(|| {
        rest.to_ascii_lowercase()
            .split("__")
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// Partitions `deploy/kafka/create-topics.sh` gives a topic.
pub fn topic_partitions(topic: &str) -> u64 {
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

const PROMTOOL_HINT: &str = "promtool is required for the deploy checks: \
    `apt-get install -y prometheus` (Debian's package ships /usr/bin/promtool), \
    or set PROMTOOL_BIN to a promtool binary.";

/// `$PROMTOOL_BIN`, else promtool on PATH; fails with the install hint.
pub fn promtool() -> PathBuf {
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
pub fn run_promtool(args: &[&str]) {
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
