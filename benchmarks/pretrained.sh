#!/usr/bin/env bash
# Regenerate the shipped bundles sc_neurocore/pretrained/mnist-t{32,8,4,2,1}.scnb and mnist-t4-lite.scnb.
# The exact sc-neurocore commands: `bash benchmarks/pretrained.sh --dry-run`; they are also
# recorded in every bundle's provenance (pretrained_recipe). Options: see benchmarks/pretrained.py --help.
# ~26 min on one CPU core (one run at a time); same torch version + threads => byte-identical bundles.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
exec "$PY" benchmarks/pretrained.py "$@"
