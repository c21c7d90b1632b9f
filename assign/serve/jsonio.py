"""JSON in and out of the service: orjson (several times faster than the standard library
on snapshot-sized documents; the parsed values and the numbers written are the same)."""
from __future__ import annotations

from typing import Any

import orjson

from assign.errors import SnapshotError


def loads_body(body: bytes, *, where: str = "<body>") -> Any:
    """Parse a request body; bad JSON is a :class:`SnapshotError` naming where and why."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise SnapshotError([f"{where}: not valid JSON: {err}"]) from err


def dumps(obj: Any, *, default: Any = None) -> bytes:
    """Compact JSON bytes (numpy scalars allowed; ``default`` converts other types)."""
    return orjson.dumps(obj, default=default, option=orjson.OPT_SERIALIZE_NUMPY)
