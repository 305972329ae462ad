#!/usr/bin/env bash
# Vendor the Worker's Python packages into python_modules/ (what wrangler bundles).
# Cross-platform pip flags pick wheels for Cloudflare's Pyodide (Python 3.14, wasm32).
# Only what this script puts there is replaced: your own modules in python_modules/ stay.
# PIP overrides the pip to use (default: the project's .venv, else python3 -m pip).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PIP:-}" ]; then
  if [ -x .venv/bin/pip ]; then PIP=.venv/bin/pip; else PIP="python3 -m pip"; fi
fi
mkdir -p python_modules
$PIP install --quiet --upgrade --target python_modules \
  --platform pyemscripten_2026_0_wasm32 --platform any \
  --python-version 3.14 --implementation cp --abi cp314 --abi none \
  --only-binary=:all: \
  msgspec anyio ruamel.yaml workers-runtime-sdk
# The engine and the example apps travel as vendored packages: wrangler bundles the main
# module's folder (worker/) and python_modules/, nothing else of the project.
rm -rf python_modules/engine python_modules/examples
cp -r engine examples python_modules/
find python_modules/engine python_modules/examples -name __pycache__ -prune -exec rm -rf {} +
echo "vendored into python_modules/: $(ls python_modules | grep -v dist-info | tr '\n' ' ')" >&2
