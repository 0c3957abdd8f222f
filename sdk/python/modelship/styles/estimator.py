"""No code: ``model.joblib`` / ``model.pkl`` holding a scikit-learn estimator or Pipeline (or the scikit-learn
API of XGBoost / LightGBM): ``predict`` and, where it exists, ``predict_proba``. Its inputs, outputs and classes
are read from the estimator."""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from ..bundle import Bundle, Result, Row
from ..errors import BundleError
from ..outputs import to_jsonable
from ._shared import matrix, unpickle

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None  # type: ignore[assignment]

MODEL_FILES = ("model.joblib", "model.pkl")
MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle")


class EstimatorBundle(Bundle):
    style = "sklearn"

    def __init__(self, path: str, file: str) -> None:
        super().__init__(path)
        self.file = file
        self.model: Any = unpickle(os.path.join(path, file))
        if not callable(getattr(self.model, "predict", None)):
            raise BundleError(
                "MS_ERR_PLUGIN_EXPORTS",
                f"{file} holds a {type(self.model).__name__}, which has no predict()",
                entrypoint=file,
            )
        self.v1_output = "predict"
        self.proba = callable(getattr(self.model, "predict_proba", None))
        try:  # the inputs are checked finite before they reach the worker
            import sklearn  # type: ignore[import-untyped, unused-ignore]

            sklearn.set_config(assume_finite=True)
        except ImportError:
            pass
        self.feature_names = [str(n) for n in getattr(self.model, "feature_names_in_", [])] or None
        n_features = getattr(self.model, "n_features_in_", None)
        self.inputs = [{"name": "input", "datatype": "FP64", "shape": [-1, int(n_features) if n_features else -1]}]
        classes = getattr(self.model, "classes_", None)
        label_type = "FP64"
        if classes is not None and _np is not None:
            kind = _np.asarray(classes).dtype.kind
            label_type = {"i": "INT64", "u": "INT64", "b": "BOOL", "f": "FP64"}.get(kind, "BYTES")
        self.outputs = [{"name": "predict", "datatype": label_type, "shape": [-1]}]
        if self.proba:
            width = len(classes) if classes is not None else -1
            self.outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
        if classes is not None:
            self.parameters = {"classes": to_jsonable(list(classes))}

    def predict(self, rows: list[Row], method: str = "predict", wanted: Collection[str] | None = None) -> Result:
        if self.feature_names and len(rows[0]) > 1:
            x, _ = matrix(rows, self.feature_names)
        else:
            x, _ = matrix(rows)
        cols: dict[str, Any] = {}
        if wanted is None or "predict" in wanted:
            cols["predict"] = self.model.predict(x)
        if self.proba and (wanted is None or "predict_proba" in wanted):
            cols["predict_proba"] = self.model.predict_proba(x)
        return Result(columns=cols, n=len(rows))
