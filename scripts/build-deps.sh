#!/usr/bin/env bash
# Build dependencies beyond the Rust toolchain: rdkafka's `ssl` feature links
# the system OpenSSL (TLS and SASL SCRAM towards Kafka), found through
# pkg-config. The `openssl` command makes the test certificate of the TLS
# schema registry test. Installed from Debian's packages when missing.
set -euo pipefail

if ! pkg-config --exists openssl 2>/dev/null || ! command -v openssl >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        libssl-dev pkg-config openssl >/dev/null
fi
pkg-config --exists openssl
