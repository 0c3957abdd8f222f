"""Ray Serve serving a joblib scikit-learn model, as its scikit-learn tutorial does: one deployment class
that loads the model in __init__ and predicts in __call__ on a Starlette request (Ray Serve has no OIP v2;
the body is {"instances": [[...], ...]}, the answer {"predictions": [...]}). Run by bench/peers.ts:

    python ray_server.py --model_path model.joblib --port P --replicas N --temp_dir DIR

Ray Serve's defaults otherwise (uvloop, its HTTP proxy actor, max_ongoing_requests), less the access log
line it writes per request (our runtime writes none either); HTTP on 127.0.0.1, no dashboard.
"""
import argparse
import signal
import threading

import joblib
import numpy as np
import ray
from ray import serve
from ray.serve.schema import LoggingConfig
from starlette.requests import Request


@serve.deployment
class SKLearnIris:
    def __init__(self, path):
        self.model = joblib.load(path)

    async def __call__(self, request: Request):
        body = await request.json()
        return {"predictions": self.model.predict(np.asarray(body["instances"], dtype=np.float64)).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--temp_dir", required=True)
    parser.add_argument("--max_ongoing_requests", type=int, default=64)
    args = parser.parse_args()
    ray.init(num_cpus=args.cpus, include_dashboard=False, _temp_dir=args.temp_dir, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    app = SKLearnIris.options(
        num_replicas=args.replicas,
        max_ongoing_requests=args.max_ongoing_requests,
        logging_config=LoggingConfig(enable_access_log=False),
    ).bind(args.model_path)
    serve.run(app, name="iris", route_prefix="/iris")
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
