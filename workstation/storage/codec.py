"""JSON (de)serialisation of the frozen domain dataclasses: enums by value, dates and datetimes as ISO 8601.

`to_jsonable` / `from_jsonable` work on any dataclass whose field annotations resolve (nested dataclasses,
enums, `X | None`, dicts and lists of plain JSON); `dumps` / `loads` add the text step. Datetimes are
normalised to UTC on the way out so stored timestamps sort as text and compare as instants.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any, TypeVar

from ..domain import Contract

T = TypeVar("T")


def iso(ts: datetime) -> str:
    """Fixed-width UTC ISO 8601 text of an aware datetime (sorts as text in time order)."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: timestamps must be timezone-aware")
    return ts.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    """Inverse of `iso` (also accepts any ISO 8601 text with an offset)."""
    return datetime.fromisoformat(text)


def to_jsonable(value: Any) -> Any:
    """Plain JSON values for a dataclass, enum, date, datetime, or containers of them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def from_jsonable(cls: type[T], data: Any) -> T:
    """Rebuild a value of type `cls` (usually a dataclass) from `to_jsonable` output."""
    return _decode(cls, data)


def dumps(value: Any) -> str:
    """Compact JSON text of `to_jsonable(value)`; NaN is kept (Python's json reads it back)."""
    return json.dumps(to_jsonable(value), separators=(",", ":"), sort_keys=True)


def loads(cls: type[T], text: str) -> T:
    """Inverse of `dumps` for a value of type `cls`."""
    return from_jsonable(cls, json.loads(text))


def contract_to_json(contract: Contract) -> str:
    """A Contract as JSON text (the form the journal stores)."""
    return dumps(contract)


@functools.lru_cache(maxsize=4096)
def contract_from_json(text: str) -> Contract:
    """Inverse of `contract_to_json`; cached, contracts are immutable and repeat across fills."""
    return loads(Contract, text)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, data: Any) -> Any:
    """Coerce JSON `data` to annotation `tp`."""
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(args[0], data) if len(args) == 1 else data
    if origin in (list, tuple):
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return origin(_decode(item, v) for v in data)
    if origin is dict or tp is dict:
        return dict(data)
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            hints = _hints(tp)
            kwargs = {f.name: _decode(hints[f.name], data[f.name])
                      for f in dataclasses.fields(tp) if f.init and f.name in data}
            return tp(**kwargs)
        if issubclass(tp, Enum):
            return tp(data)
        if issubclass(tp, datetime):
            return parse_iso(data)
        if issubclass(tp, date):
            return date.fromisoformat(data)
        if tp is float:
            return float(data)
        if tp is int and isinstance(data, float) and data.is_integer():
            return int(data)
    return data
