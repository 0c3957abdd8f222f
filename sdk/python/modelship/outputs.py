"""What predict() may return, checked the way the server checks it (Fusion's rule).

An output is a dict with ``str`` keys whose values are numbers, ``str``, or lists / 1-D numpy arrays of
numbers or of ``str``. numpy scalars become Python numbers; numeric arrays stay numpy arrays (the worker
sends them as raw buffers); anything else is ``MS_ERR_OUTPUT_INVALID`` naming the key and the type.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import BundleError

try:  # numpy is optional: the worker runs in any environment.
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only without numpy
    _np = None  # type: ignore[assignment]

# numpy dtype kinds the wire carries as raw buffers: bool, signed, unsigned, float.
NUMERIC_KINDS = "biuf"

Outputs = dict[str, Any]


def to_jsonable(value: Any) -> Any:
    """numpy values → plain Python, for event payloads, route bodies and a Ray request's json."""
    if _np is not None:
        if isinstance(value, _np.ndarray):
            return value.tolist()
        if isinstance(value, _np.generic):
            return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _type_name(value: object) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def _invalid(key: str, detail: str, row: int | None) -> BundleError:
    at = "" if row is None else f" (instance {row})"
    return BundleError("MS_ERR_OUTPUT_INVALID", f'output "{key}"{at} {detail}')


def _scalar(key: str, value: Any, row: int | None, where: str = "") -> str | bool | int | float:
    if isinstance(value, (str, bool)):
        return value
    if _np is not None and isinstance(value, _np.generic):
        item = value.item()
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        return _scalar(key, item, row, where)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isnan(f) or math.isinf(f):
            raise _invalid(key, f"{where}is {f!r}, which JSON cannot carry", row)
        return f
    raise _invalid(
        key, f"{where}is {_type_name(value)}; expected a number, str, or a list or 1-D array of numbers or of str", row
    )


def _array(key: str, value: Any, row: int | None) -> Any:
    if value.ndim != 1:
        raise _invalid(key, f"is a {value.ndim}-D array of shape {list(value.shape)}; an output is a scalar or 1-D", row)
    kind = value.dtype.kind
    if kind in NUMERIC_KINDS:
        if kind == "f" and not _np.isfinite(value).all():
            raise _invalid(key, "holds NaN or infinity, which JSON cannot carry", row)
        if kind == "b":
            return [bool(v) for v in value]
        if kind == "f" and value.dtype.itemsize not in (4, 8):
            return value.astype(_np.float64)
        return _np.ascontiguousarray(value)
    if kind in "US":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.tolist()]
    return _list(key, value.tolist(), row)


def _kind(v: object) -> str:
    if isinstance(v, str):
        return "str"
    if isinstance(v, bool):
        return "bool"
    return "number"


def _list(key: str, value: Iterable[Any], row: int | None) -> list[Any]:
    out = [_scalar(key, v, row, f"element {i} ") for i, v in enumerate(value)]
    if out:
        first = _kind(out[0])
        for i, v in enumerate(out):
            if _kind(v) != first:
                raise _invalid(key, f"mixes {first} and {_kind(v)} (element {i}); a list holds one type", row)
    return out


def check_value(key: str, value: Any, row: int | None = None) -> Any:
    if _np is not None and isinstance(value, _np.ndarray):
        return _array(key, value, row)
    if isinstance(value, (list, tuple)):
        return _list(key, value, row)
    return _scalar(key, value, row)


def check_outputs(result: object, row: int | None = None) -> Outputs:
    """The outputs of one instance, converted for the wire; raises MS_ERR_OUTPUT_INVALID."""
    at = "" if row is None else f" (instance {row})"
    if not isinstance(result, Mapping):
        raise BundleError(
            "MS_ERR_OUTPUT_INVALID", f"predict returned {_type_name(result)}{at}; expected a dict of output names to values"
        )
    if not result:
        raise BundleError("MS_ERR_OUTPUT_INVALID", f"predict returned an empty dict{at}")
    out: Outputs = {}
    for key, value in result.items():
        if not isinstance(key, str):
            raise BundleError("MS_ERR_OUTPUT_INVALID", f"output key {key!r}{at} is {_type_name(key)}; keys must be str")
        out[key] = check_value(key, value, row)
    return out


def check_column(key: str, column: Any, n: int) -> Any:
    """A whole output column (one entry per instance): a numeric numpy array of 1 or 2 dimensions stays an
    array (sent as one raw buffer); anything else becomes a list of checked per-instance values."""
    if _np is not None and isinstance(column, _np.ndarray):
        kind = column.dtype.kind
        if column.ndim in (1, 2) and kind in NUMERIC_KINDS and kind != "b":
            if kind == "f" and not _np.isfinite(column).all():
                raise _invalid(key, "holds NaN or infinity, which JSON cannot carry", None)
            if kind == "f" and column.dtype.itemsize not in (4, 8):
                column = column.astype(_np.float64)
            return _np.ascontiguousarray(column)
        column = list(column)
    values = [check_value(key, v, i) for i, v in enumerate(column)]
    if _np is not None and values and _all_numeric(values):
        # One typed buffer instead of n JSON numbers; integers stay integers (INT64) on the way.
        array = _np.asarray(values)
        if array.dtype.kind in "if" and array.ndim in (1, 2):
            return array
    return values


def _all_numeric(values: list[Any]) -> bool:
    first = values[0]
    if isinstance(first, list):
        return all(isinstance(v, list) and len(v) == len(first) and all(_is_number(x) for x in v) for v in values)
    return all(_is_number(v) for v in values)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
