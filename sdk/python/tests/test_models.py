"""modelship.models: handles to spec.dependencies, against a real HTTP server on loopback."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import modelship
from modelship.errors import BundleError
from modelship.models import _Models, _set_current

seen = []


class Member(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        seen.append({"id": self.headers.get("x-request-id"), "timeout": self.headers.get("x-modelship-timeout-ms"), "path": self.path})
        if self.path.startswith("/v1/models/slow"):
            time.sleep(0.3)
        if self.path.startswith("/v1/models/picky"):
            out, status = {"error": "input 'x' is missing", "code": "MS_ERR_INPUT_INVALID"}, 400
        else:
            out, status = {"predictions": [{"doubled": i["n"] * 2} for i in body.get("instances", [])]}, 200
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def handles(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Member)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv(
        "MODELSHIP_DEPENDENCIES",
        json.dumps({
            "member": {"url": url, "model": "member", "modelServing": "member-ms"},
            "slow": {"url": url, "model": "slow", "modelServing": "slow-ms"},
            "picky": {"url": url, "model": "picky", "modelServing": "picky-ms"},
            "gone": {"url": "http://127.0.0.1:9", "model": "gone", "modelServing": "gone-ms"},
        }),
    )
    seen.clear()
    yield _Models()
    server.shutdown()
    _set_current(None, None)


def test_predict_from_threads_carries_the_request_id_and_the_remaining_time(handles):
    _set_current("tree-7", time.time() * 1000 + 5000)
    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(lambda n: handles["member"].predict({"n": n}), range(8)))
    assert [o["doubled"] for o in out] == [0, 2, 4, 6, 8, 10, 12, 14]
    assert handles["member"].predict([{"n": 1}, {"n": 2}]) == [{"doubled": 2}, {"doubled": 4}]
    assert {s["id"] for s in seen} == {"tree-7"}
    assert all(0 < int(s["timeout"]) <= 5000 for s in seen)
    assert sorted(handles) == ["gone", "member", "picky", "slow"]


def test_asyncio_calls_run_together(handles):
    import asyncio

    _set_current("a-1", time.time() * 1000 + 5000)

    async def both():
        return await asyncio.gather(handles["slow"].apredict({"n": 1}), handles["slow"].apredict({"n": 2}))

    started = time.time()
    out = asyncio.run(both())
    assert [o["doubled"] for o in out] == [2, 4]
    assert time.time() - started < 0.55  # two 0.3 s calls at once, not one after the other


def test_errors_name_the_dependency_and_carry_the_callee_code(handles):
    _set_current("e-1", time.time() * 1000 + 5000)
    with pytest.raises(BundleError) as unknown:
        handles["svn"]
    assert unknown.value.code == "MS_ERR_DEPENDENCY_UNKNOWN"
    assert unknown.value.params["known"] == "gone, member, picky, slow"
    with pytest.raises(BundleError) as gone:
        handles["gone"].predict({"n": 1})
    assert gone.value.code == "MS_ERR_DEPENDENCY_UNAVAILABLE"
    assert gone.value.params["ms"] == "gone-ms"
    with pytest.raises(BundleError) as picky:
        handles["picky"].predict({"n": 1})
    assert picky.value.code == "MS_ERR_DEPENDENCY_REJECTED"
    assert picky.value.detail == "MS_ERR_INPUT_INVALID: input 'x' is missing"
    _set_current("e-2", time.time() * 1000 + 100)
    with pytest.raises(BundleError) as late:
        handles["slow"].predict({"n": 1})
    assert late.value.code == "MS_ERR_DEPENDENCY_TIMEOUT"


def test_the_package_exports_models():
    assert isinstance(modelship.models, _Models)
