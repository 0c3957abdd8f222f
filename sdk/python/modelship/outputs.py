"""What predict() may return, checked the way the server checks it (Fusion's rule).

An output is a dict with ``str`` keys whose values are numbers, ``str``, or lists / 1-D numpy arrays of
numbers or of ``str``. numpy scalars become Python numbers; numeric arrays stay numpy arrays (the worker
sends them as raw buffers); anything else is ``MS_ERR_OUTPUT_INVALID`` naming the key and the type.
"""

import math
import numbers

from .errors import BundleError

try:  # numpy is optional: the worker runs in any environment.
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only without numpy
    _np = None

# numpy dtype kinds the wire carries as raw buffers: bool, signed, unsigned, float.
NUMERIC_KINDS = "biuf"


def _type_name(value):
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else "%s.%s" % (t.__module__, t.__name__)


def _invalid(key, detail, row):
    at = "" if row is None else " (instance %d)" % row
    return BundleError("MS_ERR_OUTPUT_INVALID", 'output "%s"%s %s' % (key, at, detail))


def _scalar(key, value, row, where=""):
    if isinstance(value, str) or isinstance(value, bool):
        return value
    if _np is not None and isinstance(value, _np.generic):
        value = value.item()
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return _scalar(key, value, row, where)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isnan(f) or math.isinf(f):
            raise _invalid(key, "%sis %r, which JSON cannot carry" % (where, f), row)
        return f
    raise _invalid(
        key,
        "%sis %s; expected a number, str, or a list or 1-D array of numbers or of str" % (where, _type_name(value)),
        row,
    )


def _array(key, value, row):
    if value.ndim != 1:
        raise _invalid(key, "is a %d-D array of shape %s; an output is a scalar or 1-D" % (value.ndim, list(value.shape)), row)
    if value.dtype.kind in NUMERIC_KINDS:
        if value.dtype.kind == "f" and not _np.isfinite(value).all():
            raise _invalid(key, "holds NaN or infinity, which JSON cannot carry", row)
        if value.dtype.kind == "b":
            return [bool(v) for v in value]
        if value.dtype.kind == "f" and value.dtype.itemsize not in (4, 8):
            return value.astype(_np.float64)
        return _np.ascontiguousarray(value)
    if value.dtype.kind in "US":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.tolist()]
    return _list(key, value.tolist(), row)


def _list(key, value, row):
    out = [_scalar(key, v, row, "element %d " % i) for i, v in enumerate(value)]
    if out:
        first = _kind(out[0])
        for i, v in enumerate(out):
            if _kind(v) != first:
                raise _invalid(key, "mixes %s and %s (element %d); a list holds one type" % (first, _kind(v), i), row)
    return out


def _kind(v):
    if isinstance(v, str):
        return "str"
    if isinstance(v, bool):
        return "bool"
    return "number"


def check_value(key, value, row=None):
    if _np is not None and isinstance(value, _np.ndarray):
        return _array(key, value, row)
    if isinstance(value, (list, tuple)):
        return _list(key, value, row)
    return _scalar(key, value, row)


def check_outputs(result, row=None):
    """The outputs of one instance, converted for the wire; raises MS_ERR_OUTPUT_INVALID."""
    at = "" if row is None else " (instance %d)" % row
    if not isinstance(result, dict):
        raise BundleError(
            "MS_ERR_OUTPUT_INVALID", "predict returned %s%s; expected a dict of output names to values" % (_type_name(result), at)
        )
    if not result:
        raise BundleError("MS_ERR_OUTPUT_INVALID", "predict returned an empty dict%s" % at)
    out = {}
    for key, value in result.items():
        if not isinstance(key, str):
            raise BundleError("MS_ERR_OUTPUT_INVALID", "output key %r%s is %s; keys must be str" % (key, at, _type_name(key)))
        out[key] = check_value(key, value, row)
    return out


def check_column(key, column, n):
    """A whole output column (one entry per instance): a numeric numpy array of 1 or 2 dimensions stays an
    array (sent as one raw buffer); anything else becomes a list of checked per-instance values."""
    if _np is not None and isinstance(column, _np.ndarray):
        if column.ndim in (1, 2) and column.dtype.kind in NUMERIC_KINDS and column.dtype.kind != "b":
            if column.dtype.kind == "f" and not _np.isfinite(column).all():
                raise _invalid(key, "holds NaN or infinity, which JSON cannot carry", None)
            if column.dtype.kind == "f" and column.dtype.itemsize not in (4, 8):
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


def _all_numeric(values):
    first = values[0]
    if isinstance(first, list):
        return all(isinstance(v, list) and len(v) == len(first) and all(_is_number(x) for x in v) for v in values)
    return all(_is_number(v) for v in values)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)
