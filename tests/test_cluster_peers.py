"""Real MCP clients against a cluster: THREE engine processes over one PostgreSQL database
behind a round-robin nginx (tests/cluster.py), every client speaking to nginx only.

The checks are the single-server peer tests' own, run against the balancer's URL (a cluster
has the ``url`` and ``output()`` those tests read off a server):

- the official conformance suites (tests/test_conformance.py: 0.1.16, and 0.2.0-alpha.12 in
  both eras and with every scenario it has), against the everything app;
- the official Python SDK's session-era flows (tests/test_client_python_sdk.py);
- the TypeScript SDK client's flows (tests/test_peers_ts.py);
- mcp-remote's flows (tests/test_peers_mcp_remote.py).

Two clusters serve the module, each shared by its tests: the everything app (conformance, the
tests written for it) and the demo app (the flows written for it). After each test, every one
of the three processes must have answered at least one of that test's requests.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

import test_client_python_sdk as sdk
import test_peers_mcp_remote as remote
import test_peers_ts as ts
from test_conformance import SUITES, check_suite

pytestmark = [pytest.mark.cluster, pytest.mark.peers]


@pytest.fixture(scope="module")
def c3(module_cluster):
    """Three processes serving examples.everything, shared by the module's tests."""
    return module_cluster(3, "examples.everything:app")


@pytest.fixture(scope="module")
def demo3(module_cluster):
    """Three processes serving the demo app (engine/demo.py), shared by the module's tests."""
    return module_cluster(3)


@contextmanager
def on_every_process(cluster, settle: float = 5.0) -> Iterator[None]:
    """What runs inside reaches every process: each upstream port answers at least one more
    request through nginx than before (nginx logs a request when it ends: wait a moment for
    streams that are closing)."""
    ports = {s.port for s in cluster.servers}
    before = cluster.nginx.upstreams()
    yield
    deadline = time.monotonic() + settle
    while True:
        after = cluster.nginx.upstreams()
        answered = {port for port, count in after.items() if count > before.get(port, 0)}
        if answered == ports or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(after) == ports, f"{after}\n{cluster.output()[-20000:]}"
    assert answered == ports, f"only {sorted(answered)} of {sorted(ports)} answered: before {before}, " \
                              f"after {after}\n{cluster.output()[-20000:]}"


# -- 1. the conformance suites ---------------------------------------------------------------------


@pytest.mark.parametrize("version", list(SUITES))
def test_conformance_suite_through_the_cluster(version, node, c3, tmp_path):
    with on_every_process(c3):
        check_suite(node, c3.url, version, tmp_path)


# -- 2. the official Python SDK (session era) --------------------------------------------------------

#: The flows of test_client_python_sdk.py that run against the demo app, by name.
SDK_FLOWS = {
    "initialize": sdk.test_initialize_negotiates_latest_version_and_capabilities,
    "tools": sdk.test_tools_list_call_and_errors,
    "progress": sdk.test_progress_notifications,
    "sampling": sdk.test_sampling_callback,
    "elicitation-accept": lambda s: sdk.test_elicitation_callback(s, "accept", {"confirm": True}, "confirmed: deploy"),
    "elicitation-decline": lambda s: sdk.test_elicitation_callback(s, "decline", None,
                                                                   "not confirmed (decline): deploy"),
    "roots": sdk.test_roots_callback,
    "no-client-capability": sdk.test_server_request_without_client_capability_is_a_tool_error,
    "cancel": sdk.test_cancelled_call_leaves_the_session_usable,
    "resources": sdk.test_resources,
    "prompts-and-completion": sdk.test_prompts_and_completion,
    "subscription": sdk.test_resource_subscription_and_unsubscription,
    "resumption-tokens": sdk.test_resumption_tokens_are_stream_counter_ids,
    "resume-same-session": sdk.test_resume_in_the_same_session_replays_the_rest,
    "resume-from-a-fresh-client": sdk.test_resume_after_dropped_connection_from_a_fresh_client,
}


@pytest.mark.parametrize("flow", list(SDK_FLOWS))
def test_python_sdk_session_flow_through_the_cluster(flow, demo3):
    with on_every_process(demo3):
        SDK_FLOWS[flow](demo3)


@pytest.mark.parametrize(("level", "expected"), [("info", sdk.EVERYTHING_LOGS), ("warning", [])])
def test_python_sdk_logging_through_the_cluster(level, expected, c3):
    with on_every_process(c3):
        sdk.test_logging_level_filters_log_messages(c3, level, expected)


# -- 3. the TypeScript SDK client ----------------------------------------------------------------------


def test_typescript_sdk_full_session_through_the_cluster(node, demo3):
    with on_every_process(demo3):
        ts.check_full_session(node, demo3, fresh=False)


def test_typescript_sdk_sse_full_session_through_the_cluster(node, demo3):
    with on_every_process(demo3):
        ts.check_sse_full_session(node, demo3, fresh=False, update_before_result=False)


def test_typescript_sdk_sse_everything_through_the_cluster(node, c3):
    with on_every_process(c3):
        ts.check_sse_everything(node, c3)


@pytest.mark.parametrize("mode", ["pinned", "auto"])
def test_typescript_client_2x_in_2026_mode_through_the_cluster(node, c3, mode):
    with on_every_process(c3):
        ts.check_2x_in_2026_mode(node, c3, mode)


def test_typescript_sdk_2025_tasks_through_the_cluster(node, c3):
    with on_every_process(c3):
        ts.check_tasks_run(ts.run_tasks_driver(node, c3.url))


# -- 4. mcp-remote -----------------------------------------------------------------------------------------


@pytest.fixture
def peers(node, tmp_path) -> Iterator:
    """mcp-remote proxies (``peers(url, transport)``), all killed after the test."""
    made: list[remote.StdioPeer] = []

    def make(url: str, transport: str | None = "http-only") -> remote.StdioPeer:
        peer = remote.StdioPeer(node, url, Path(tmp_path), transport)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.kill()


def test_mcp_remote_full_session_through_the_cluster(demo3, peers, tmp_path):
    with on_every_process(demo3):
        remote.check_full_session(peers, demo3.url, tmp_path)


def test_mcp_remote_sse_only_through_the_cluster(demo3, peers, tmp_path):
    with on_every_process(demo3):
        remote.check_sse_only(peers, demo3.url, tmp_path)


def test_mcp_remote_http_first_falls_back_to_sse_through_the_cluster(demo3, peers, tmp_path):
    with on_every_process(demo3):
        remote.check_http_first_falls_back_to_sse(peers, demo3.url, tmp_path)
