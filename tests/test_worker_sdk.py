"""SDK apps on Cloudflare: the official Python SDK, both majors, in the real Workers runtime.

``worker/vendor.sh --mcp 2`` (or ``--mcp 1``) vendors the SDK beside the engine; the
everything server written with the SDK's decorators (``tests/sdk_apps``) is copied in and
served by ``wrangler dev`` in per-session Durable Objects, then driven by both conformance
suites and the official Python client. At the end the base vendoring is restored.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from typing import Any

import anyio
import pytest

import mcp.types as types

import test_worker
from conftest import ROOT
from test_client_python_sdk import connect, text_of
from test_conformance import check_suite
from bench import wrangler
from bench.wrangler import Wrangler
from test_worker import _require_wrangler

pytestmark = [pytest.mark.worker, pytest.mark.sdk]

APPS = ROOT / "python_modules" / "sdk_apps"


def vendor_sdk(major: int) -> None:
    wrangler.vendor("--mcp", str(major))
    test_worker._vendored.clear()  # python_modules no longer holds the base set alone
    shutil.rmtree(APPS, ignore_errors=True)
    shutil.copytree(ROOT / "tests" / "sdk_apps", APPS, ignore=shutil.ignore_patterns("__pycache__", "tasked.py"))


@pytest.fixture(scope="module", params=[2, 1], ids=["mcp2", "mcp1"])
def worker_sdk(request):
    _require_wrangler()
    vendor_sdk(request.param)
    server = Wrangler("sdk_apps.everything_sdk:mcp", tempfile.mkdtemp(prefix="mcp-actors-wrangler-"))
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def restore_base_vendoring():
    yield
    shutil.rmtree(APPS, ignore_errors=True)
    test_worker.vendor()


@pytest.mark.parametrize("suite", ["0.1.16", "0.2.0-alpha.12 2025-11-25"])
def test_conformance_of_an_sdk_app_under_workerd(worker_sdk, node, suite, tmp_path):
    check_suite(node, worker_sdk.url.replace("127.0.0.1", "localhost"), suite, tmp_path)


def test_the_python_client_with_an_sdk_app_under_workerd(worker_sdk):
    """The SDK's Context in a Durable Object: progress, sampling, elicitation, reading a
    resource, the lifespan; a sync tool runs without threads."""
    async def on_sample(context: Any, params: Any) -> types.CreateMessageResult:
        return types.CreateMessageResult(role="assistant", model="m", content=types.TextContent(type="text", text="ok"))

    async def on_elicit(context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"username": "edge", "email": "edge@example.com"})

    progress: list = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def body() -> None:
        with anyio.fail_after(60):
            async with connect(worker_sdk.url, sampling_callback=on_sample, elicitation_callback=on_elicit) as s:
                assert text_of(await s.call_tool("test_simple_text", {})) == \
                    "This is a simple text response for testing."  # a sync tool: no thread in Pyodide
                done = await s.call_tool("long_task", {"steps": 2, "interval_s": 0.01}, progress_callback=on_progress)
                assert text_of(done) == "long_task finished 2 steps" and progress == [1, 2]
                assert text_of(await s.call_tool("test_sampling", {"prompt": "q"})) == "LLM response: ok"
                elicited = await s.call_tool("test_elicitation", {"message": "who?"})
                assert "'username': 'edge'" in text_of(elicited)
                assert text_of(await s.call_tool("read_static", {})) == \
                    "This is the content of the static text resource."
                assert text_of(await s.call_tool("lifespan_state", {})).startswith("started=True")

    anyio.run(body)


def test_the_hkdf_shim_derives_what_cryptography_does():
    """pyodide_shims/cryptography stands in for cryptography in the Worker: its HKDF must
    give the same keys (the SDK derives them when an MCPServer is made)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    path = ROOT / "pyodide_shims" / "cryptography" / "hazmat" / "primitives" / "kdf" / "hkdf.py"
    spec = importlib.util.spec_from_file_location("shim_hkdf", path)
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)  # type: ignore[union-attr]
    for salt, info, length in ((b"salt", b"info", 32), (None, b"", 16), (b"s" * 40, b"x" * 10, 80)):
        real = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(b"key material")
        ours = shim.HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(b"key material")
        assert ours == real


def test_the_bundle_with_the_sdk_stays_within_its_budget(worker_sdk, capsys):
    """The Worker with the official SDK vendored (each major), against bench/bundle.py's budget."""
    from bench import bundle

    line = bundle.check("sdk")
    with capsys.disabled():
        print(f"\n{line}")
