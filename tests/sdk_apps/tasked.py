"""The same SDK server, with its long_task allowed to run as a task (which the SDK itself
cannot declare): ``python -m engine serve tests.sdk_apps.tasked:app``."""

from engine import from_sdk
from tests.sdk_apps.everything_sdk import mcp

app = from_sdk(mcp, tasks={"long_task": "optional"})
