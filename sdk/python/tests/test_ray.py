"""Ray Serve deployments served as written: the request object, detection, the ray / ray.serve compatibility
modules, and handles to spec.dependencies (against real HTTP servers on loopback)."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelship import BundleError, LocalBundleRunner
from modelship.models import models
from modelship.runner import parse_manifest
from modelship.styles.ray import JsonObject, Request

from conftest import EXAMPLES

SAMPLE = {"sepal length": 1.2, "sepal width": 1.0, "petal length": 1.1, "petal width": 0.9}
VIRGINICA = {"sepal length": 6.7, "sepal width": 3.0, "petal length": 5.2, "petal width": 2.3}


def write(tmp_path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return str(tmp_path)


def sklearn_label(folder: str, file: str, instance: dict[str, float]) -> str:
    """What the tutorial's SKLearnModel computes, straight from the model file: the reference."""
    base = os.path.join(EXAMPLES, "ray-sklearn", folder)
    with open(os.path.join(base, file), "rb") as f:
        model = pickle.load(f)
    with open(os.path.join(base, "iris_labels.json")) as f:
        labels = json.load(f)
    return str(labels[model.predict([list(instance.values())])[0]])


def test_the_request_json_is_a_property_and_awaitable() -> None:
    request = Request({"a": 1}, "GET", "/x", {"q": "1"}, {"h": "v"})
    assert request.json == {"a": 1}
    assert request.json["a"] == 1
    assert isinstance(request.json, JsonObject)
    assert asyncio.run(_awaited_json(request)) == {"a": 1}
    assert (request.method, request.path, request.query_params, request.args, request.headers) == (
        "GET", "/x", {"q": "1"}, {"q": "1"}, {"h": "v"},
    )
    assert asyncio.run(request.body()) == b'{"a": 1}'
    for value in ([1, 2], "text", 3, 2.5):
        assert Request(value).json == value
        assert asyncio.run(_awaited_json(Request(value))) == value
    assert Request(None).json is None
    # numpy values (OIP v2 tensors on the wire) are plain JSON values in the request.
    np = pytest.importorskip("numpy")
    assert Request({"x": np.arange(3)}).json == {"x": [0, 1, 2]}


async def _awaited_json(request: Request) -> Any:
    return await request.json()


def test_the_tutorials_sklearn_model_as_written() -> None:
    for folder, file in (("logistic", "iris_logistic_regression.pkl"), ("svm", "iris_svm_classifier.pkl")):
        runner = LocalBundleRunner(os.path.join(EXAMPLES, "ray-sklearn", folder))
        assert runner.metadata["style"] == "ray"
        assert runner.metadata["v1Output"] == "output"
        for instance in (SAMPLE, VIRGINICA):
            assert runner.predict(instance) == {"output": sklearn_label(folder, file, instance)}
        # Its default route: "/" below /v2/models/{name}/custom, any method; a str answers as text.
        assert {r["path"] for r in runner.metadata["routes"]} == {"/"}
        index = runner.metadata["routes"].index({"method": "GET", "path": "/"})
        assert runner.bundle.call_route(index, {"method": "GET", "path": "/", "body": VIRGINICA}) == (
            200, sklearn_label(folder, file, VIRGINICA),
        )


def test_a_class_without_decorator_with_parameters_relative_to_the_bundle(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "model.py": (
            "class Scaler:\n"
            "    def __init__(self, factor_file, offset=0):\n"
            "        self.factor = float(open(factor_file).read())\n"
            "        self.offset = offset\n"
            "    def __call__(self, request):\n"
            "        return {'y': request.json['x'] * self.factor + self.offset, 'method': request.method}\n"
        ),
        "factor.txt": "3",
        "modelship.yaml": "name: scaler\nparameters:\n  factor_file: factor.txt\n  offset: 1\n",
    })
    runner = LocalBundleRunner(path)
    assert runner.predict_batch([{"x": 1}, {"x": 2}]) == [{"y": 4.0, "method": "POST"}, {"y": 7.0, "method": "POST"}]


def test_async_call_and_awaited_json(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "app.py": (
            "import asyncio\n"
            "from ray import serve\n"
            "@serve.deployment(num_replicas=2, route_prefix='/double')\n"
            "class Double:\n"
            "    async def __call__(self, request):\n"
            "        body = await request.json()\n"
            "        await asyncio.sleep(0)\n"
            "        return body['n'] * 2\n"
            "app = Double.bind()\n"
            "serve.run(app)\n"
        ),
    })
    runner = LocalBundleRunner(path)
    assert runner.predict({"n": 21}) == {"output": 42}
    assert {r["path"] for r in runner.metadata["routes"]} == {"/double"}
    assert runner.bundle.call_route(1, {"method": "POST", "path": "/double", "body": {"n": 2}}) == (200, 4)


def test_setup_calls_and_decorators_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "serving.py": (
            "import ray\n"
            "from ray import serve\n"
            "ray.init(address='auto')\n"
            "serve.init()\n"
            "assert serve.context.web is True\n"
            "class Model:\n"
            "    def __init__(self, label='a'):\n"
            "        self.label = label\n"
            "    def __call__(self, request, *, payload=None):\n"
            "        return self.label + str(request.json['v'])\n"
            "serve.create_endpoint(endpoint_name='model', route='/model')\n"
            "serve.create_backend(Model, 'model:v1', 'ignored')\n"
            "serve.link('model', 'model:v1')\n"
            "handle = serve.get_handle('model')\n"
            "@serve.deployment\n"
            "def helper_not_served(request):\n"
            "    return 1\n"
            "helper_not_served.options(name='x').bind()\n"
        ),
        "modelship.yaml": "entrypoint: serving.py:Model\nparameters:\n  label: b\n",
    })
    runner = LocalBundleRunner(path)
    assert runner.predict({"v": 1}) == {"output": "b1"}
    # create_endpoint + create_backend + link gave it its route.
    assert {r["path"] for r in runner.metadata["routes"]} == {"/model"}


def test_a_function_with_a_route(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "fn.py": (
            "from ray import serve\n"
            "@serve.route('/echo')\n"
            "def echo(flask_request):\n"
            "    return {'got': flask_request.json['x'], 'q': flask_request.query_params.get('q', '')}\n"
        ),
    })
    runner = LocalBundleRunner(path)
    assert runner.predict({"x": "hi"}) == {"got": "hi", "q": ""}
    req = {"method": "GET", "path": "/echo", "query": {"q": "1"}, "body": {"x": "there"}}
    assert runner.bundle.call_route(0, req) == (200, {"got": "there", "q": "1"})


def test_detection_refuses_what_it_cannot_decide(tmp_path: Path) -> None:
    two = write(tmp_path, {
        "two.py": (
            "from ray import serve\n"
            "@serve.deployment\n"
            "class A:\n"
            "    def __call__(self, r):\n"
            "        return 1\n"
            "@serve.deployment\n"
            "class B:\n"
            "    def __call__(self, r):\n"
            "        return 2\n"
        ),
    })
    with pytest.raises(BundleError, match=r"declares 2 Ray deployments \(A, B\); name one with entrypoint: two.py:Name"):
        LocalBundleRunner(two)
    assert LocalBundleRunner(two, "two.py:B").predict({}) == {"output": 2}
    none = tmp_path / "none"
    none.mkdir()
    (none / "x.py").write_text("class A:\n    pass\n")
    with pytest.raises(BundleError, match="a Ray Serve deployment"):
        LocalBundleRunner(str(none))
    with pytest.raises(BundleError, match="class A has neither predict"):
        LocalBundleRunner(str(none), "x.py:A")


def test_answers_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, {"m.py": "class M:\n    def __call__(self, r):\n        return r.json.get('out')\n"})
    runner = LocalBundleRunner(path)
    assert runner.predict({"out": [1, 2]}) == {"output": [1, 2]}
    with pytest.raises(BundleError, match="the deployment returned None"):
        runner.predict({})
    with pytest.raises(BundleError, match='output "a" is dict'):
        runner.predict_batch([{"out": {"a": {"b": 1}}}])


def test_a_constructor_that_fails_is_an_init_failure(tmp_path: Path) -> None:
    path = write(tmp_path, {"m.py": "class M:\n    def __init__(self, model_path):\n        open(model_path)\n    def __call__(self, r):\n        return 1\n"})
    with pytest.raises(BundleError) as err:
        LocalBundleRunner(path)
    assert err.value.code == "MS_ERR_PLUGIN_INIT_FAILED"
    assert "model_path" in err.value.detail


def test_a_real_ray_is_never_shadowed(tmp_path: Path) -> None:
    real = tmp_path / "site"
    (real / "ray").mkdir(parents=True)
    (real / "ray" / "__init__.py").write_text("REAL = True\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "m.py").write_text("import ray\nclass M:\n    def __call__(self, r):\n        return getattr(ray, 'REAL', False)\n")
    saved = {k: v for k, v in sys.modules.items() if k == "ray" or k.startswith("ray.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(real))
    try:
        assert LocalBundleRunner(str(bundle)).predict({}) == {"output": True}
    finally:
        sys.path.remove(str(real))
        for k in [k for k in sys.modules if k == "ray" or k.startswith("ray.")]:
            del sys.modules[k]
        sys.modules.update(saved)


class Member(BaseHTTPRequestHandler):
    """A member ModelServing's KServe v1 :predict: the label of a fake model, after 0.3 s."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        time.sleep(0.3)
        name = self.path.split("/")[3].split(":")[0]
        out = {"predictions": [f"{name}:{i['petal length']}" for i in body["instances"]]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def members(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Member)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    targets = {name: {"url": url, "model": name, "modelServing": f"ray-{name}"} for name in ("logistic", "svm")}
    monkeypatch.setenv("MODELSHIP_DEPENDENCIES", json.dumps(targets))
    monkeypatch.setattr(models, "_handles", None)
    yield
    server.shutdown()
    monkeypatch.setattr(models, "_handles", None)


def test_the_tutorials_ensemble_calls_both_members_at_once(members: None) -> None:
    runner = LocalBundleRunner(os.path.join(EXAMPLES, "ray-ensemble"))
    started = time.monotonic()
    assert runner.predict(SAMPLE) == {"logistic": "logistic:1.1", "svm": "svm:1.1"}
    assert time.monotonic() - started < 0.55  # two calls of 0.3 s each, in parallel
    status, body = runner.bundle.call_route(0, {"method": "GET", "path": "/ensemble", "body": VIRGINICA})
    assert (status, body) == (200, {"logistic": "logistic:5.2", "svm": "svm:5.2"})


def test_handles_futures_and_unknown_names(members: None) -> None:
    import ray
    from ray import serve

    refs = [serve.get_handle("svm").remote(SAMPLE), serve.get_handle("logistic").remote(**SAMPLE)]
    assert "svm" in repr(serve.get_handle("svm"))
    assert ray.get(refs) == ["svm:1.1", "logistic:1.1"]
    assert ray.get(serve.get_handle("svm").options(method_name="x").remote(payload=VIRGINICA)) == "svm:5.2"

    async def awaited() -> Any:
        return await serve.get_handle("logistic").remote(payload=SAMPLE)

    assert asyncio.run(awaited()) == "logistic:1.1"
    with pytest.raises(BundleError) as err:
        serve.get_handle("knn").remote(payload=SAMPLE)
    assert err.value.code == "MS_ERR_DEPENDENCY_UNKNOWN"
    assert err.value.params["known"] == "logistic, svm"


def test_the_manifest_reader_without_pyyaml_knows_parameters() -> None:
    doc = parse_manifest(
        "name: ray-svm  # a comment\n"
        "entrypoint: 'sklearn_model.py:SKLearnModel'\n"
        "parameters:\n"
        "  model_path: iris_svm_classifier.pkl\n"
        "  threshold: 0.5\n"
        "  quoted: \"a b\"\n"
        "format: python\n"
    )
    assert doc == {
        "name": "ray-svm",
        "entrypoint": "sklearn_model.py:SKLearnModel",
        "parameters": {"model_path": "iris_svm_classifier.pkl", "threshold": 0.5, "quoted": "a b"},
        "format": "python",
    }
