"""Fetching a JSON document over HTTP(S) for the local runtime: the authorization server's
metadata and keys (:class:`engine.actors.auth.JwtVerifier` asks through this port).

The standard library's client, in a worker thread (the event loop never blocks on the
network), with a time limit and a size limit; redirects are followed as urllib does.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

#: Seconds for the whole fetch, and the most bytes a document may have.
TIMEOUT = 10.0
MAX_BYTES = 1024 * 1024


def _get(url: str) -> Any:
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(url, headers={"accept": "application/json", "user-agent": "mcp-actors"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 (http(s) only, above)
        data = response.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"{url} is larger than {MAX_BYTES} bytes")
    return json.loads(data)


async def fetch_json(url: str) -> Any:
    return await asyncio.to_thread(_get, url)
