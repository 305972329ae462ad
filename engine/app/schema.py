"""JSON Schema and argument validation from Python type hints, via msgspec.

A handler's parameters become one msgspec Struct: msgspec then gives both the JSON Schema
the client sees (``inputSchema``) and the validator the arguments go through, so what we
advertise and what we accept cannot disagree. The context parameter, found by its
annotation (the caller names the type, so this module imports no handler machinery), is
left out of both.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any, Callable

import msgspec


class Signature(msgspec.Struct):
    """What the dispatcher needs to call a handler with validated arguments."""

    args_type: type
    names: tuple[str, ...]
    context_param: str | None
    schema: dict
    descriptions: dict

    def convert(self, arguments: dict | None) -> dict:
        """Validated keyword arguments; raises ``msgspec.ValidationError`` with a clear path."""
        value = msgspec.convert(arguments or {}, self.args_type)
        return {name: getattr(value, name) for name in self.names}


def _is_context(annotation: Any, context_type: type | None) -> bool:
    if context_type is None:
        return False
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return isinstance(annotation, type) and issubclass(annotation, context_type)


def _description(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is typing.Annotated:
        for extra in typing.get_args(annotation)[1:]:
            if isinstance(extra, msgspec.Meta) and extra.description:
                return extra.description
    return None


def signature_of(fn: Callable, type_name: str, context_type: type | None = None) -> Signature:
    """The handler's arguments as a Struct; the parameter annotated ``context_type`` (the
    app passes :class:`~engine.app.context.Context`) is left out, and remembered."""
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: list[tuple] = []
    names: list[str] = []
    descriptions: dict[str, str] = {}
    context_param = None
    for name, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(name, Any)
        if _is_context(annotation, context_type):
            context_param = name
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: *args and **kwargs cannot be described as a JSON Schema")
        names.append(name)
        desc = _description(annotation)
        if desc:
            descriptions[name] = desc
        if param.default is param.empty:
            fields.append((name, annotation))
        elif isinstance(param.default, (list, dict, set)):
            default = param.default
            fields.append((name, annotation, msgspec.field(default_factory=lambda d=default: d.copy())))
        else:
            fields.append((name, annotation, param.default))
    args_type = msgspec.defstruct(type_name, fields, kw_only=True)
    return Signature(args_type, tuple(names), context_param, object_schema(args_type), descriptions)


def object_schema(tp: Any) -> dict:
    """An inline JSON Schema for ``tp``: the top definition hoisted, the rest under ``$defs``."""
    schema = msgspec.json.schema(tp)
    ref = schema.pop("$ref", None)
    defs = schema.pop("$defs", {})
    if ref is not None:
        schema = dict(defs.pop(ref.rsplit("/", 1)[1]))
        schema.pop("title", None)
    if defs:
        schema["$defs"] = defs
    if schema.get("type") == "object":
        schema.setdefault("properties", {})
        if not schema.get("required", True):
            del schema["required"]
    return schema


def is_object_type(tp: Any) -> bool:
    """True for return annotations that map to a JSON object (structured tool output)."""
    if tp is None or tp is inspect.Signature.empty:
        return False
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if isinstance(tp, type):
        return (
            issubclass(tp, msgspec.Struct)
            or dataclasses.is_dataclass(tp)
            or typing.is_typeddict(tp)
        )
    return False


def return_type(fn: Callable) -> Any:
    return typing.get_type_hints(fn, include_extras=True).get("return", inspect.Signature.empty)


def header(name: str) -> msgspec.Meta:
    """Mirror a tool argument into an ``Mcp-Param-{name}`` HTTP header (2026-07-28
    ``x-mcp-header``), so gateways can route on it: ``region: Annotated[str, header("Region")]``.
    Only for string, integer and boolean arguments."""
    return msgspec.Meta(extra_json_schema={"x-mcp-header": name})
