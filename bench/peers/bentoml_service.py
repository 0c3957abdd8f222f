"""BentoML serving a joblib scikit-learn model: a @bentoml.service class that loads it in __init__ and a
@bentoml.api predict taking the instances as a numpy array (BentoML has no OIP v2; the body is
{"input": [[...], ...]}, the answer the predictions as a JSON array). Run by bench/peers.ts:

    BENCH_MODEL_PATH=model.joblib BENCH_WORKERS=N bentoml serve bentoml_service:SKLearnIris --host 127.0.0.1 --port P

BentoML's defaults otherwise, less the access log line it writes per request (our runtime writes none).
"""
import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "1")), logging={"access": {"enabled": False}})
class SKLearnIris:
    def __init__(self):
        self.model = joblib.load(os.environ["BENCH_MODEL_PATH"])

    @bentoml.api
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.model.predict(input)
