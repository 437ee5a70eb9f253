#!/usr/bin/env bash
# Installs Ray from PyPI into a virtualenv beside this script (once) and runs the Lisbon filter
# over a folder of logs kept by `cod bench dataset --keep-data`, with every core:
#   Benchmarks/ray-lisbon.sh LOGS_FOLDER BOX_REGEX AWK_PROGRAM [--cpus N]
# `cod bench dataset --ray` runs it by itself, in the same run as Cod and the floor.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${RAY_VENV:-$here/.venv-ray}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import ray' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ray==${RAY_VERSION:-2.60.0}" >&2
fi
exec "$venv/bin/python" "$here/ray_lisbon.py" "$@"
