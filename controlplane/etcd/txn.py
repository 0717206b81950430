"""Building transactions: compares and operations (etcd's Txn: if all compares hold, success runs)."""

from __future__ import annotations

from shoal.etcd.v3 import messages_pb2 as pb

Key = str | bytes

_RESULTS = {"==": pb.Compare.EQUAL, "!=": pb.Compare.NOT_EQUAL, ">": pb.Compare.GREATER, "<": pb.Compare.LESS}


def key_bytes(key: Key) -> bytes:
    return key.encode() if isinstance(key, str) else key


def prefix_end(prefix: Key) -> bytes:
    """The range end that covers every key starting with prefix (etcd's convention)."""
    raw = bytearray(key_bytes(prefix))
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"  # every key


def _compare(key: Key, op: str, target: int, **value: object) -> pb.Compare:
    if op not in _RESULTS:
        raise ValueError(f"compare operator {op!r}: expected one of {', '.join(_RESULTS)}")
    return pb.Compare(key=key_bytes(key), result=_RESULTS[op], target=target, **value)  # type: ignore[arg-type]


def mod_revision(key: Key, op: str, revision: int) -> pb.Compare:
    """The key's last modification revision; `== 0` means "the key does not exist"."""
    return _compare(key, op, pb.Compare.MOD, mod_revision=revision)


def create_revision(key: Key, op: str, revision: int) -> pb.Compare:
    return _compare(key, op, pb.Compare.CREATE, create_revision=revision)


def version(key: Key, op: str, value: int) -> pb.Compare:
    return _compare(key, op, pb.Compare.VERSION, version=value)


def value(key: Key, op: str, data: Key) -> pb.Compare:
    return _compare(key, op, pb.Compare.VALUE, value=key_bytes(data))


def put(key: Key, data: Key, lease: int = 0) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key_bytes(key), value=key_bytes(data), lease=lease))


def delete(key: Key, prefix: bool = False) -> pb.RequestOp:
    end = prefix_end(key) if prefix else b""
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key_bytes(key), range_end=end))


def get(key: Key, prefix: bool = False) -> pb.RequestOp:
    end = prefix_end(key) if prefix else b""
    return pb.RequestOp(request_range=pb.RangeRequest(key=key_bytes(key), range_end=end))
