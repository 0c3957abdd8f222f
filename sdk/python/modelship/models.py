"""Handles to the ModelServings this one depends on (``spec.dependencies``), for composing models::

    from modelship import models

    def predict(x):
        with ThreadPoolExecutor(2) as pool:  # both members at once
            a, b = pool.map(lambda m: models[m].predict(x), ["logistic", "svm"])

``models["svm"].predict(instance)`` (KServe v1: an instance → its prediction, a list → the list of
predictions) and ``models["svm"].infer(request)`` (OIP v2) block their thread and are safe from many threads;
``await models["svm"].apredict(x)`` / ``ainfer`` run them in asyncio's default executor. Each call carries the
running request's id (the records of a whole call tree join on it) and its remaining time (the callee stops at
the caller's deadline); a failure raises ``BundleError`` with the dependency's name and the callee's own code.
Standard library only: one keep-alive HTTP connection per thread and dependency.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

from .errors import BundleError

TIMEOUT_HEADER = "x-modelship-timeout-ms"

# The request the worker is running (one at a time per worker process): set by the worker around each call.
# Its caller's credentials go with the calls it makes, so a dependency that requires authentication checks the
# caller's identity.
_current: dict[str, Any] = {"request_id": None, "deadline": None, "authorization": None}


def _set_current(request_id: str | None, deadline: float | None, authorization: str | None = None) -> None:
    _current["request_id"] = request_id
    _current["deadline"] = deadline
    _current["authorization"] = authorization


class _Handle:
    def __init__(self, name: str, target: dict[str, Any]) -> None:
        self.name = name
        self.model: str = target["model"]
        self.model_serving: str = target.get("modelServing", self.model)
        u = urllib.parse.urlsplit(target["url"])
        self._host = u.hostname or "localhost"
        self._port = u.port or 80
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<modelship dependency {self.name}: ModelServing {self.model_serving}>"

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        c: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._local.conn = c
        else:
            c.timeout = timeout
            if c.sock is not None:
                c.sock.settimeout(timeout)
        return c

    def _error(self, code: str, detail: str, **params: object) -> BundleError:
        return BundleError(code, detail, name=self.name, ms=self.model_serving, **params)

    def _post(self, path: str, body: object) -> Any:
        deadline = _current["deadline"]
        remaining = (deadline - time.time() * 1000) if deadline else 30000.0
        if remaining <= 0:
            raise self._error("MS_ERR_DEPENDENCY_TIMEOUT", "no time left", timeout=0)
        headers = {"content-type": "application/json", TIMEOUT_HEADER: str(int(remaining))}
        if _current["request_id"]:
            headers["x-request-id"] = _current["request_id"]
        if _current["authorization"]:
            headers["authorization"] = _current["authorization"]
        data = json.dumps(body).encode()
        refused = 0
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1:  # after a retry's pause: what is left now
                remaining = (deadline - time.time() * 1000) if deadline else 30000.0
                if remaining <= 0:
                    raise self._error("MS_ERR_DEPENDENCY_TIMEOUT", "no time left", timeout=0)
                headers[TIMEOUT_HEADER] = str(int(remaining))
            conn = self._conn(remaining / 1000.0)
            try:
                conn.request("POST", path, body=data, headers=headers)
                res = conn.getresponse()
                text = res.read().decode("utf-8", "replace")
                break
            except TimeoutError:
                conn.close()
                raise self._error("MS_ERR_DEPENDENCY_TIMEOUT", "timed out", timeout=int(remaining)) from None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
                # A kept-alive connection the callee closed meanwhile: once more on a new one.
                conn.close()
                self._local.conn = None
                if attempt >= 2:
                    raise self._error("MS_ERR_DEPENDENCY_UNAVAILABLE", f"{type(err).__name__}: {err}") from None
            except ConnectionRefusedError as err:
                # Never sent: tried again after 50, 100, 200 ms (a Service between endpoints), within the deadline.
                conn.close()
                self._local.conn = None
                pause = 0.05 * 2 ** refused
                refused += 1
                if refused > 3 or (deadline and time.time() * 1000 + pause * 1000 >= deadline):
                    raise self._error("MS_ERR_DEPENDENCY_UNAVAILABLE", f"{type(err).__name__}: {err}") from None
                time.sleep(pause)
                continue
            except OSError as err:
                conn.close()
                self._local.conn = None
                raise self._error("MS_ERR_DEPENDENCY_UNAVAILABLE", f"{type(err).__name__}: {err}") from None
        if res.status == 200:
            return json.loads(text)
        try:
            doc = json.loads(text)
            detail = f"{doc.get('code')}: {doc.get('error')}" if doc.get("code") else str(doc.get("error", text[:200]))
        except (ValueError, AttributeError):
            detail = text[:200] or f"HTTP {res.status}"
        if res.status == 503:
            raise self._error("MS_ERR_DEPENDENCY_UNAVAILABLE", detail)
        if res.status == 504:
            raise self._error("MS_ERR_DEPENDENCY_TIMEOUT", detail, timeout=int(remaining))
        if 400 <= res.status < 500:
            raise self._error("MS_ERR_DEPENDENCY_REJECTED", detail)
        raise self._error("MS_ERR_DEPENDENCY_FAILED", detail)

    def predict(self, instance: Any) -> Any:
        many = isinstance(instance, list)
        answer = self._post(f"/v1/models/{urllib.parse.quote(self.model)}:predict", {"instances": instance if many else [instance]})
        predictions = answer.get("predictions")
        if not isinstance(predictions, list):
            raise self._error("MS_ERR_DEPENDENCY_FAILED", "its answer has no predictions list")
        return predictions if many else predictions[0]

    def infer(self, request: dict[str, Any]) -> Any:
        return self._post(f"/v2/models/{urllib.parse.quote(self.model)}/infer", request)

    async def apredict(self, instance: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.predict, instance)

    async def ainfer(self, request: dict[str, Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.infer, request)


class _Models:
    """``models["name"]``: the handle of a dependency; an unknown name raises, naming the known ones."""

    def __init__(self) -> None:
        self._handles: dict[str, _Handle] | None = None

    def _load(self) -> dict[str, _Handle]:
        if self._handles is None:
            targets = json.loads(os.environ.get("MODELSHIP_DEPENDENCIES") or "{}")
            self._handles = {name: _Handle(name, t) for name, t in targets.items()}
        return self._handles

    def __getitem__(self, name: str) -> _Handle:
        handles = self._load()
        if name not in handles:
            known = ", ".join(sorted(handles)) or "(none: spec.dependencies is empty)"
            raise BundleError("MS_ERR_DEPENDENCY_UNKNOWN", "unknown dependency", name=name, known=known)
        return handles[name]

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._load()))

    def __len__(self) -> int:
        return len(self._load())


models = _Models()
