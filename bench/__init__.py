"""``python -m bench``: side-by-side benchmarks against the official SDKs (issue 6; not built yet)."""
