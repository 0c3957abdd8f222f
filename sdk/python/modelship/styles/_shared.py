"""What several styles do alike: instances and feature matrices from rows, per-instance results as columns,
the signals a plugin returns beside its outputs."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Sequence
from typing import Any

from ..bundle import Row, Signal
from ..errors import BundleError, InvalidInput

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None  # type: ignore[assignment]

METRICS_KEY = "$metrics"
EVENTS_KEY = "$events"


def split_signals(result: Any, metrics: list[Signal], events: list[Signal]) -> Any:
    """A result's ``$metrics`` and ``$events`` keys moved into ``metrics`` and ``events``."""
    if isinstance(result, dict) and (METRICS_KEY in result or EVENTS_KEY in result):
        result = dict(result)
        for key, into in ((METRICS_KEY, metrics), (EVENTS_KEY, events)):
            v = result.pop(key, None)
            if v is not None:
                into.extend(v if isinstance(v, list) else [v])
    return result


def instances(rows: list[Row]) -> list[Any]:
    """KServe v1 instances from rows: a row that holds one input is that input's value."""
    return [next(iter(r.values())) if len(r) == 1 else r for r in rows]


def matrix(rows: list[Row], names: Sequence[str] | None = None) -> tuple[Any, list[str]]:
    """A 2-D feature matrix (and the column names) from rows: one input holding a vector per row, or one
    scalar input per feature."""
    first = rows[0]
    cols: list[str]
    if len(first) == 1:
        key = next(iter(first))
        data: list[Any] = [r.get(key) for r in rows]
        if data and not isinstance(data[0], (list, tuple)) and not (_np is not None and isinstance(data[0], _np.ndarray)):
            data = [[v] for v in data]
        cols = []
    else:
        cols = list(names) if names else list(first)
        missing = [c for c in cols if c not in first]
        if missing:
            raise InvalidInput(f"input {', '.join(missing)} is missing")
        data = [[r[c] for c in cols] for r in rows]
    if _np is None:
        return data, cols
    try:
        return _np.asarray(data), cols
    except ValueError as e:
        raise InvalidInput(f"the instances do not form a matrix: {e}") from None


def length(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def columns(method: str, value: Any, n: int) -> dict[str, Any]:
    """A per-instance result (array or list, one entry per row) as columns, checked."""
    cols = value if isinstance(value, dict) else {"predictions": value}
    out: dict[str, Any] = {}
    for key, col in cols.items():
        size = length(col)
        if size != n or isinstance(col, str):
            got = type(col).__name__ if size is None else f"{size} values"
            raise BundleError(
                "MS_ERR_OUTPUT_INVALID",
                f"{method} returned {got} for {key} {n} instances; expected one prediction per instance",
            )
        out[key] = col
    return out


def call_init(fn: Callable[..., Any], path: str) -> None:
    """``init(bundle_path)`` or ``init()``, whichever the plugin defines."""
    try:
        params = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = 1
    if params:
        fn(path)
    else:
        fn()


def unpickle(path: str) -> Any:
    try:
        import joblib  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        with open(path, "rb") as f:
            return pickle.load(f)
    return joblib.load(path)
