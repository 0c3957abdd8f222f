"""Fusion: ``predict.py`` with ``init(bundle_path)`` and ``predict(model_input: dict) -> dict`` (optional
``predict_batch(list) -> list``). A result may carry ``$metrics`` and ``$events`` beside its outputs."""

from __future__ import annotations

from collections.abc import Collection
from types import ModuleType
from typing import Any

from ..bundle import Bundle, Result, Row, Signal
from ..errors import BundleError
from ..outputs import check_outputs
from ._shared import call_init, length, split_signals


class FusionBundle(Bundle):
    style = "fusion"

    def __init__(self, path: str, module: ModuleType) -> None:
        super().__init__(path)
        self.module = module
        self._predict = getattr(module, "predict", None)
        self._batch = getattr(module, "predict_batch", None)
        init = getattr(module, "init", None)
        if init is not None:
            call_init(init, path)

    def predict(self, rows: list[Row], method: str = "predict", wanted: Collection[str] | None = None) -> Result:
        metrics: list[Signal] = []
        events: list[Signal] = []
        results: Any
        if self._batch is not None and (len(rows) > 1 or self._predict is None):
            results = self._batch(rows)
            if length(results) != len(rows):
                raise BundleError(
                    "MS_ERR_OUTPUT_INVALID",
                    f"predict_batch returned {type(results).__name__} for {len(rows)} inputs; "
                    f"expected a list of {len(rows)} dicts",
                )
        else:
            assert self._predict is not None  # the loader picks this style only with one of the two
            results = [self._predict(r) for r in rows]
        many = len(rows) > 1
        out = [check_outputs(split_signals(r, metrics, events), i if many else None) for i, r in enumerate(results)]
        return Result(rows=out, metrics=metrics, events=events)
