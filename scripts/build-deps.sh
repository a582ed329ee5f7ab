#!/usr/bin/env bash
# Build dependencies beyond the Rust toolchain: rdkafka's `ssl` feature links
# the system OpenSSL (TLS and SASL SCRAM towards Kafka), found through
# pkg-config. Installed from Debian's packages when missing.
set -euo pipefail

if ! pkg-config --exists openssl 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        libssl-dev pkg-config >/dev/null
fi
pkg-config --exists openssl
