//! Any text as a configuration file: it loads and validates, or fails with
//! an error; it never panics, and an error never quotes a secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vitalstream::config::{Config, Secret};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            let _ = config.validate();
            // A dump of what loaded never shows a secret: it is the same
            // whatever the passwords are. (Searching the dump for the
            // password text is not a test: a password may equal another
            // setting's text, such as `true`.)
            let dump = config.to_redacted_toml().unwrap_or_default();
            let mut other = config.clone();
            let security = &mut other.kafka.security;
            if security.sasl_password.is_some() || security.ssl_key_password.is_some() {
                let changed = || Some(Secret::new("another-password-Xq9"));
                security.sasl_password = security.sasl_password.as_ref().and(changed());
                security.ssl_key_password = security.ssl_key_password.as_ref().and(changed());
                assert_eq!(
                    other.to_redacted_toml().unwrap_or_default(),
                    dump,
                    "the dump depends on a password"
                );
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
