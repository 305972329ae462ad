#!/usr/bin/env bash
# Vendor the Worker's Python packages into python_modules/ (what wrangler bundles).
# Cross-platform pip flags pick wheels for Cloudflare's Pyodide (Python 3.14, wasm32).
# Only what this script puts there is replaced: your own modules in python_modules/ stay.
# PIP overrides the pip to use (default: the project's .venv, else python3 -m pip).
#
#   worker/vendor.sh            the engine, its packages and the examples
#   worker/vendor.sh --mcp 2    also the official MCP SDK 2.x, to serve an MCPServer app
#   worker/vendor.sh --mcp 1    also the official MCP SDK 1.x, to serve a FastMCP app
# (about 20 MB more; pyodide_shims/README.md says what the SDK needs that PyPI has no wasm
# build of, and what stands in for it).
set -euo pipefail
cd "$(dirname "$0")/.."
MCP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mcp) MCP="${2:-}"; shift 2 ;;
    *) echo "usage: worker/vendor.sh [--mcp 2|1]" >&2; exit 2 ;;
  esac
done
if [ -z "${PIP:-}" ]; then
  if [ -x .venv/bin/pip ]; then PIP=.venv/bin/pip; else PIP="python3 -m pip"; fi
fi
WASM=(--platform pyemscripten_2026_0_wasm32 --platform any --python-version 3.14 --implementation cp
      --abi cp314 --abi none --only-binary=:all:)
# Everything is installed into a staging folder first; what the previous run vendored
# (listed in python_modules/.vendored) is then replaced by what this run did.
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
$PIP install --quiet --upgrade --target "$STAGE" "${WASM[@]}" \
  msgspec anyio ruamel.yaml workers-runtime-sdk
# PyJWT exactly, and without its crypto extra: pip would otherwise backtrack to an ancient
# release looking for a cryptography wheel this platform lacks (WebCrypto verifies here).
$PIP install --quiet --upgrade --no-deps --target "$STAGE" "${WASM[@]}" "pyjwt==2.15.1"
case "$MCP" in
  "") ;;
  2)
    # --no-deps: the SDK's full dependency tree holds packages with no wasm build (rpds-py,
    # cryptography, cffi) that a server never imports; these are the ones it does.
    $PIP install --quiet --upgrade --no-deps --target "$STAGE" "${WASM[@]}" \
      mcp==2.3.0 mcp-types==2.3.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection \
      typing-extensions idna httpx2 starlette sse-starlette python-multipart opentelemetry-api
    # httpx2 needs its fetch transport under emscripten (pip judges markers by this machine).
    $PIP install --quiet --upgrade --no-deps --ignore-requires-python --target "$STAGE" "${WASM[@]}" \
      "httpx2-jsfetch==1.0"
    cp -r pyodide_shims/cryptography "$STAGE/" ;;
  1)
    $PIP install --quiet --upgrade --no-deps --target "$STAGE" "${WASM[@]}" \
      mcp==1.30.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection typing-extensions \
      idna httpx httpx-sse h11 httpcore certifi sniffio starlette sse-starlette python-multipart pydantic-settings \
      python-dotenv jsonschema jsonschema-specifications referencing attrs pyrsistent pyrsistent-as-rpds-py
    cp -r pyodide_shims/rpds "$STAGE/" ;;
  *) echo "worker/vendor.sh: --mcp takes 2 or 1, not '$MCP'" >&2; exit 2 ;;
esac
# The engine and the example apps travel as vendored packages: wrangler bundles the main
# module's folder (worker/) and python_modules/, nothing else of the project.
cp -r engine examples "$STAGE/"
rm -rf "$STAGE/engine/cluster"  # the PostgreSQL cluster runtime: Durable Objects are the Worker's actors
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
rm -rf "$STAGE/bin"
mkdir -p python_modules
if [ -f python_modules/.vendored ]; then
  while IFS= read -r name; do [ -n "$name" ] && rm -rf "python_modules/$name"; done < python_modules/.vendored
fi
ls -A "$STAGE" > python_modules/.vendored
for name in $(ls -A "$STAGE"); do
  rm -rf "python_modules/$name"
  mv "$STAGE/$name" python_modules/
done
echo "vendored into python_modules/: $(ls python_modules | grep -v dist-info | tr '\n' ' ')" >&2
