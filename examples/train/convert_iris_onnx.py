"""Converts the no-code iris model (examples/iris-sklearn/model.joblib) to ONNX for examples/iris-onnx.

Run with a Python that has examples/train/onnx.lock installed (the base stack plus skl2onnx, onnx and
onnxruntime), after train_iris.py:

    uv venv /tmp/onnx-venv && uv pip install --python /tmp/onnx-venv -r examples/train/onnx.lock
    /tmp/onnx-venv/bin/python examples/train/convert_iris_onnx.py

The graph takes `input` (float32, [batch, 4]) and gives `predict` (int64 class index, [batch]) and
`predict_proba` (float32, [batch, 3]): the names the no-code scikit-learn bundle uses, so one OIP request
serves both. No ZipMap (a list of dicts per row), which ONNX Runtime returns only as a non-tensor value.
The script checks the converted graph against scikit-learn on all 150 iris rows before it writes.
"""
import os

import joblib
import numpy as np
import onnx
import onnxruntime
import skl2onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris

EXAMPLES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(EXAMPLES, "iris-sklearn", "model.joblib")
TARGET = os.path.join(EXAMPLES, "iris-onnx", "model.onnx")
RENAME = {"label": "predict", "probabilities": "predict_proba"}


def main():
    model = joblib.load(SOURCE)
    graph = convert_sklearn(
        model,
        "iris",
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    for node in graph.graph.node:
        node.output[:] = [RENAME.get(o, o) for o in node.output]
    for output in graph.graph.output:
        output.name = RENAME.get(output.name, output.name)
    graph.doc_string = "LogisticRegression on iris, converted from examples/iris-sklearn/model.joblib"
    onnx.checker.check_model(graph)

    X = load_iris().data
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(["predict", "predict_proba"], {"input": X.astype(np.float32)})
    expected = model.predict(X)
    if not np.array_equal(labels, expected):
        raise SystemExit(f"labels differ on {int((labels != expected).sum())} rows")
    gap = float(np.abs(probabilities - model.predict_proba(X)).max())
    if gap > 1e-4:
        raise SystemExit(f"probabilities differ by up to {gap}")

    with open(TARGET, "wb") as f:
        f.write(graph.SerializeToString())
    print(
        f"skl2onnx {skl2onnx.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}: "
        f"{os.path.relpath(TARGET, EXAMPLES)} ({os.path.getsize(TARGET)} bytes), "
        f"labels equal on {len(X)} rows, probabilities within {gap:.1e}"
    )


if __name__ == "__main__":
    main()
