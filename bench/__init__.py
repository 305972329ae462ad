"""``python -m bench``: mcp-actors measured side by side with the official SDKs and a raw
ASGI floor, on this machine, in one run (ratios are only ever taken within a run)."""
