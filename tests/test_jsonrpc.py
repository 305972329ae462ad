import msgspec
import pytest

from engine.protocol import jsonrpc
from engine.protocol.jsonrpc import ProtocolError, decode


def test_classifies_messages():
    assert jsonrpc.kind(jsonrpc.decode(b'{"jsonrpc":"2.0","id":1,"method":"ping"}')) == jsonrpc.REQUEST
    assert jsonrpc.kind(jsonrpc.decode(b'{"jsonrpc":"2.0","id":"a","method":"ping"}')) == jsonrpc.REQUEST
    assert jsonrpc.kind(jsonrpc.decode(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')) == jsonrpc.NOTIFICATION
    assert jsonrpc.kind(jsonrpc.decode(b'{"jsonrpc":"2.0","id":1,"result":{}}')) == jsonrpc.RESPONSE
    err = jsonrpc.decode(b'{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"no"}}')
    assert jsonrpc.kind(err) == jsonrpc.RESPONSE and err.error.code == -1


@pytest.mark.parametrize("body, code, words", [
    (b'{"jsonrpc":"2.0",', -32700, "not valid JSON"),
    (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', -32600, "batches"),
    (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', -32600, '"2.0"'),
    (b'{"jsonrpc":"2.0","id":null,"method":"ping"}', -32600, "null"),
    (b'{"jsonrpc":"2.0","id":1}', -32600, "method"),
    (b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', -32600, "params"),
    (b'"hello"', -32600, "JSON-RPC"),
])
def test_rejects_bad_messages_with_codes(body, code, words):
    with pytest.raises(ProtocolError) as info:
        jsonrpc.decode(body)
    assert info.value.code == code
    assert words in info.value.message


def test_encoders_round_trip():
    assert msgspec.json.decode(jsonrpc.response(3, {"a": 1})) == {"jsonrpc": "2.0", "id": 3, "result": {"a": 1}}
    assert msgspec.json.decode(jsonrpc.error(None, -32700, "bad")) == {
        "jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "bad"}}
    assert msgspec.json.decode(jsonrpc.notification("n", {"x": 1}))["params"] == {"x": 1}
    assert "params" not in msgspec.json.decode(jsonrpc.request(1, "roots/list"))


def test_nesting_depth_is_checked_before_decoding():
    def message(depth: int) -> bytes:
        return (b'{"jsonrpc":"2.0","id":1,"method":"m","params":' + b'{"a":' * (depth - 1) + b"1"
                + b"}" * (depth - 1) + b"}")

    assert decode(message(100)).params is not None  # the params object itself is level 2
    with pytest.raises(ProtocolError) as info:
        decode(message(101))
    assert info.value.code == -32600 and "100 levels" in info.value.message
    brackets_in_strings = b'{"jsonrpc":"2.0","id":1,"method":"m","params":{"s":"' + b"[{" * 500 + b'"}}'
    assert decode(brackets_in_strings).params["s"].startswith("[{")
