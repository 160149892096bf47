#!/usr/bin/env bash
# Runs the Python `ocpp` 2.1.0 decode+validate benchmark in a local venv (created on first use).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${OCPP_PY_VENV:-$here/../../target/py-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "ocpp==2.1.0"
fi
exec "$venv/bin/python" "$here/bench_ocpp_py.py" "$@"
