"""KServe's Python model server serving a joblib scikit-learn model, the way its sklearnserver does.

sklearnserver itself is not on PyPI; this is its load/predict: joblib.load of the file, then, per request,
kserve.utils.utils.get_predict_input (an OIP v2 request or v1 instances → a numpy array), the estimator's
predict, get_predict_response. Run by bench/peers.ts:

    python kserve_server.py --model_name iris-sklearn --model_path model.joblib --http_port P --workers N ...

Two adjustments, both in KServe's favour: its access log and the trace line it writes per request are
off (our runtime writes no line per request either), and its REST server listens on 127.0.0.1 rather than
the 0.0.0.0 it hard-codes (the benchmark's traffic stays on loopback).
"""
import argparse
import atexit
import copy
import json
import os
import tempfile

import joblib
import uvicorn
from kserve import Model, ModelServer, model_server
from kserve import logging as kserve_logging
from kserve.utils.utils import get_predict_input, get_predict_response


class SKLearnModel(Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.path = path
        self._model = None

    def load(self):
        self._model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        instances = get_predict_input(payload)
        return get_predict_response(payload, self._model.predict(instances), self.name)


class LoopbackConfig(uvicorn.Config):
    def __init__(self, *args, **kwargs):
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


def quiet_log_config():
    """KServe's logging configuration less the per-request lines, as a file (workers > 1 read it too)."""
    config = copy.deepcopy(kserve_logging.KSERVE_LOG_CONFIG)
    for name in ("uvicorn.access", "kserve.trace"):
        config["loggers"][name]["level"] = "WARNING"
    fd, path = tempfile.mkstemp(prefix="kserve-log-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    atexit.register(os.unlink, path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    uvicorn.Config = LoopbackConfig
    model_server.args.log_config_file = quiet_log_config()
    kserve_logging.configure_logging(model_server.args.log_config_file)
    model = SKLearnModel(args.model_name, args.model_path)
    model.load()
    ModelServer().start([model])
