"""From parsed JSON to the shapes and back, with the standard library alone."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
_Convert = Callable[[Any], Any]
_DECODERS: dict[Any, _Convert] = {}


class WireError(ValueError):
    """JSON that does not have the shape it should (names the shape and the field)."""


def decode(shape: type[T], data: Any) -> T:
    """``data`` (parsed JSON) as a ``shape``: nested dataclasses, tuples and optional values
    are built from their type annotations; unknown keys are ignored (a newer server may add
    optional fields), a missing required one raises ``WireError`` naming it."""
    result: T = _decoder(shape)(data)
    return result


def _decoder(hint: Any) -> _Convert:
    known = _DECODERS.get(hint)
    if known is None:
        known = _DECODERS[hint] = _make_decoder(hint)
    return known


def _make_decoder(hint: Any) -> _Convert:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass_decoder(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            return lambda v: v  # bool | str and the like: JSON already says which
        convert = _decoder(present[0])
        return lambda v: None if v is None else convert(v)
    if origin is list:
        item = _decoder(args[0])
        return lambda v: [item(x) for x in v]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda v: tuple(item(x) for x in v)
        items = [_decoder(a) for a in args]
        return lambda v: tuple(f(x) for f, x in zip(items, v, strict=True))
    if hint is float:
        return float
    return lambda v: v


def _dataclass_decoder(cls: type[Any]) -> _Convert:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls)]
    required = {
        f.name for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }  # fmt: skip

    def convert(data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise WireError(f"{cls.__name__} must be an object, not {type(data).__name__}")
        missing = required - data.keys()
        if missing:
            raise WireError(f"{cls.__name__} lacks {', '.join(sorted(missing))}")
        try:
            return cls(**{name: f(data[name]) for name, f in fields if name in data})
        except (TypeError, ValueError) as exc:
            raise WireError(f"{cls.__name__} does not fit: {exc}") from exc

    return convert


def encode(value: Any) -> Any:
    """A dataclass (nested, with tuples and mappings) as JSON-ready data; faster than
    ``dataclasses.asdict``, which deep-copies every leaf."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    return value
