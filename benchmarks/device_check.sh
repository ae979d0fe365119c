#!/usr/bin/env bash
# One GPU check: bash benchmarks/device_check.sh OUT_DIR [device_check.py flags]. Installs the carried wheels in
# .whl/ (bash benchmarks/device_wheels.sh, run here beforehand) into /tmp/site without a network, then runs
# benchmarks/device_check.py (about 7 minutes on one GPU; see its docstring).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-device_check_out}"; shift || true
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
exec python3 -m benchmarks.device_check --out "$out" "$@"
