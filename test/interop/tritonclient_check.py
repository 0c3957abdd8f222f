"""Drives a running modelship runtime with NVIDIA's tritonclient, unmodified, with its defaults (HTTP:
binary tensors in and out; gRPC: raw contents). Prints one JSON object of what it saw; the vitest side
(test/interop/tritonclient.int.test.ts) asserts on it. Usage: tritonclient_check.py HTTP_URL GRPC_URL MODEL CASE"""

import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def tensors(module, case):
    """(inputs, requested outputs) for a case: the iris features as FP64 or FP32, or the echo's tensors."""
    if case == "iris":
        x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
        inp = module.InferInput("features", list(x.shape), "FP64")
        inp.set_data_from_numpy(x)
        return [inp], [module.InferRequestedOutput("label"), module.InferRequestedOutput("probabilities")]
    if case == "sklearn":
        x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
        inp = module.InferInput("input", list(x.shape), "FP64")
        inp.set_data_from_numpy(x)
        return [inp], [module.InferRequestedOutput("predict_proba"), module.InferRequestedOutput("predict")]
    # echo: one tensor per datatype, each returned as it came
    f32 = module.InferInput("f32", [2, 3], "FP32")
    f32.set_data_from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
    f64 = module.InferInput("f64", [2], "FP64")
    f64.set_data_from_numpy(np.array([1.5, -2.25]))
    i64 = module.InferInput("i64", [2, 2], "INT64")
    i64.set_data_from_numpy(np.array([[1, -2], [3, 2**40]], dtype=np.int64))
    s = module.InferInput("s", [2], "BYTES")
    s.set_data_from_numpy(np.array([b"hello", "h\u00e9llo".encode()], dtype=np.object_))
    return [f32, f64, i64, s], None


def result(res, outputs):
    out = {}
    for name in outputs:
        arr = res.as_numpy(name)
        if arr is None:
            out[name] = None
        elif arr.dtype == np.object_:
            out[name] = {"dtype": "object", "shape": list(arr.shape), "data": [v.decode() if isinstance(v, bytes) else v for v in arr.ravel().tolist()]}
        else:
            out[name] = {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": arr.ravel().tolist()}
    return out


def main():
    http_url, grpc_url, model, case = sys.argv[1:5]
    names = {"iris": ["label", "probabilities"], "sklearn": ["predict_proba", "predict"], "echo": ["f32", "f64", "i64", "s"]}[case]
    report = {}
    for proto, module, url in (("http", httpclient, http_url), ("grpc", grpcclient, grpc_url)):
        client = module.InferenceServerClient(url=url)
        r = {"live": client.is_server_live(), "ready": client.is_server_ready(), "model_ready": client.is_model_ready(model)}
        md = client.get_server_metadata()
        mmd = client.get_model_metadata(model)
        if proto == "grpc":
            r["server"] = {"name": md.name, "extensions": list(md.extensions)}
            r["model"] = {"name": mmd.name, "inputs": [i.name for i in mmd.inputs], "outputs": [o.name for o in mmd.outputs]}
        else:
            r["server"] = {"name": md["name"], "extensions": md["extensions"]}
            r["model"] = {"name": mmd["name"], "inputs": [i["name"] for i in mmd["inputs"]], "outputs": [o["name"] for o in mmd["outputs"]]}
        inputs, outputs = tensors(module, case)
        res = client.infer(model, inputs, outputs=outputs, request_id="tc-%s-1" % proto)
        r["infer"] = result(res, names)
        r["id"] = res.get_response(as_json=True)["id"] if proto == "grpc" else res.get_response()["id"]
        if outputs:  # only the last requested output
            res = client.infer(model, inputs, outputs=outputs[-1:])
            got = res.get_response(as_json=True) if proto == "grpc" else res.get_response()
            r["only"] = [o["name"] for o in got["outputs"]]
        # a wrong model name and a wrong input name: clear errors, not crashes
        try:
            client.infer("no-such-model", inputs)
            r["wrong_model"] = None
        except InferenceServerException as e:
            r["wrong_model"] = {"status": str(e.status()), "message": e.message()}
        bad = module.InferInput("nope", [1], "FP32")
        bad.set_data_from_numpy(np.array([1], dtype=np.float32))
        try:
            client.infer(model, [bad])
            r["wrong_input"] = None
        except InferenceServerException as e:
            r["wrong_input"] = {"status": str(e.status()), "message": e.message()}
        client.close()
        report[proto] = r
    print(json.dumps(report))


if __name__ == "__main__":
    main()
