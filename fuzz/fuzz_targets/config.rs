//! Any text as a configuration file: it loads and validates, or fails with
//! an error; it never panics, and an error never quotes a secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vitalstream::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            let _ = config.validate();
            // A dump of what loaded never shows a secret.
            let dump = config.to_redacted_toml().unwrap_or_default();
            if let Some(password) = config.kafka.security.sasl_password() {
                let secret = password.expose();
                if secret.len() >= 4 && secret != vitalstream::config::REDACTED {
                    assert!(!dump.contains(secret), "dump shows the SASL password");
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
