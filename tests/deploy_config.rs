//! Static checks of the deployed configuration: the container config file is
//! accepted by the program's own loader, the ConfigMap carries it unchanged,
//! and every `VITALSTREAM_<SECTION>__<KEY>` override a deployment sets names
//! a key of it.

mod common;

use common::deploy::*;
use common::monitoring::*;

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
    let keys = toml_keys(&config_toml());
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
    for e in vitalstream_container(&workload())["env"]
        .as_sequence()
        .expect("env")
    {
        vars.push((
            "k8s StatefulSet".into(),
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

#[test]
fn config_keys_are_read_with_a_toml_parser() {
    let keys = toml_keys(&config_toml());
    for key in [
        "kafka.brokers",
        "kafka.group_id",
        "topics.raw",
        "http.listen_addr",
    ] {
        assert!(keys.contains(key), "{key} in {keys:?}");
    }
    assert_eq!(
        env_override_key("VITALSTREAM_KAFKA__CLIENT_ID").as_deref(),
        Some("kafka.client_id")
    );
    assert_eq!(env_override_key("VITALSTREAM_SERVICE_HOST"), None);
}
