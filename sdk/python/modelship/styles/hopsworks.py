"""Hopsworks: ``class Predict`` with ``__init__()``, ``predict(inputs)``, ``classify(inputs)``,
``regress(inputs)``; ``inputs`` is the list of instances; the working directory is the bundle."""

from __future__ import annotations

from collections.abc import Collection

from ..bundle import Bundle, Result, Row
from ..errors import InvalidInput
from ._shared import columns, instances


class HopsworksBundle(Bundle):
    style = "hopsworks"

    def __init__(self, path: str, cls: type) -> None:
        super().__init__(path)
        self.obj = cls()
        self.v1_output = "predictions"
        self.verbs = tuple(v for v in ("predict", "classify", "regress") if callable(getattr(self.obj, v, None)))

    def predict(self, rows: list[Row], method: str = "predict", wanted: Collection[str] | None = None) -> Result:
        fn = getattr(self.obj, method, None)
        if fn is None:
            raise InvalidInput(f"this model has no {method}()")
        n = len(rows)
        return Result(columns=columns(method, fn(instances(rows)), n), n=n)
