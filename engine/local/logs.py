"""The root logger of ``python -m engine serve``: text lines, or JSON ones (``--log-format json``,
:mod:`engine.observe.logs`)."""

from __future__ import annotations

import logging

from ..observe.logs import JsonFormatter


def configure(level: str, fmt: str) -> None:
    """The root logger for ``python -m engine serve``: text (the default) or JSON lines."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level="DEBUG" if level == "trace" else level.upper(), handlers=[handler])
