"""End-to-end: tasks on the 2026-07-28 wire through the official Python SDK (``mcp`` 2.3.0).

The SDK ships no tasks extension, but it has the hook one is built on: a
``ClientExtension`` declared in every request's ``_meta`` and a ``ResultClaim`` for
``resultType: "task"``, whose ``resolve`` turns the task into the tool's result. Ours polls
``tasks/get`` (sending ``Mcp-Name`` through ``name_param``), answers ``input_required``
with ``tasks/update`` and stops at a terminal status, as a user of the SDK would write it.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
import mcp_types
from pydantic import Field

from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim

from test_client_python_sdk import run, text_of


class CreateTaskResult(mcp_types.Result):
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")


class GetTaskResult(mcp_types.Result):
    task_id: str = Field(alias="taskId")
    status: str
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = Field(default=None, alias="inputRequests")


class TaskIdParams(mcp_types.RequestParams):
    task_id: str = Field(serialization_alias="taskId")


class UpdateParams(TaskIdParams):
    input_responses: dict[str, Any] = Field(serialization_alias="inputResponses")


class GetTask(mcp_types.Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class UpdateTask(mcp_types.Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param = "taskId"


class Tasks(ClientExtension):
    """The client side of io.modelcontextprotocol/tasks; records what it saw."""

    identifier = "io.modelcontextprotocol/tasks"

    def __init__(self):
        self.created: list[str] = []
        self.statuses: list[str] = []
        self.questions: list[str] = []

    def claims(self):
        return (ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve),)

    async def resolve(self, created: CreateTaskResult, ctx: ClaimContext) -> mcp_types.CallToolResult:
        self.created.append(created.task_id)
        with anyio.fail_after(30):
            while True:
                task = await ctx.session.send_request(GetTask(params=TaskIdParams(task_id=created.task_id)),
                                                      GetTaskResult)
                if not self.statuses or self.statuses[-1] != task.status:
                    self.statuses.append(task.status)
                if task.status == "completed":
                    return mcp_types.CallToolResult.model_validate(task.result)
                if task.status in ("failed", "cancelled"):
                    text = (task.error or {}).get("message", task.status)
                    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)],
                                                    is_error=True)
                if task.status == "input_required":
                    answers = {}
                    for key, question in (task.input_requests or {}).items():
                        self.questions.append(question["params"]["message"])
                        answers[key] = {"action": "accept", "content": {"confirm": True}}
                    await ctx.session.send_request(UpdateTask(params=UpdateParams(
                        task_id=created.task_id, input_responses=answers)), mcp_types.Result)
                    continue
                await anyio.sleep((task.poll_interval_ms or 500) / 1000)


def test_the_python_sdk_drives_tasks_to_their_results(everything_server):
    extension = Tasks()

    async def on_elicit(context: Any, params: Any) -> Any:  # declares the capability; tasks ask via inputRequests
        raise AssertionError("a task's question comes in tasks/get, not as a request")

    async def body():
        async with Client(everything_server.url, extensions=[extension], elicitation_callback=on_elicit) as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("slow_compute", {"seconds": 1, "label": "sdk"})
            assert text_of(result) == 'Computation "sdk" completed after 1 seconds. Result: 42.'
            assert extension.statuses[0] == "working" and extension.statuses[-1] == "completed"
            deleted = await client.call_tool("confirm_delete", {"filename": "report.pdf"})
            assert text_of(deleted) == "deleted 'report.pdf'"
            assert extension.questions == ["Delete 'report.pdf'?"]
            failed = await client.call_tool("protocol_error_job", {})
            assert failed.is_error and text_of(failed) == "The job hit an internal error"
            plain = await client.call_tool("greet", {"name": "SDK"})  # not a task tool: answered inline
            assert text_of(plain) == "Hello, SDK!"
        assert len(extension.created) == 3

    run(body)
