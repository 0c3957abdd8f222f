"""Ray Serve: a deployment class with ``__init__(self, ...)`` and ``__call__(self, request)`` (sync or async),
or a function taking the request, served as written. The constructor's keyword arguments are the manifest's
``parameters`` (paths relative to the bundle, which is the working directory).

The request (``Request``) a call receives:

- an inference (OIP v2 ``/infer``, KServe v1 ``:predict``) calls once per instance: OIP v2 inputs become the
  json ``{input name: value}`` (what a Fusion predict() gets: a tensor of shape [1] gives a scalar), a KServe v1
  instance that is an object is the json as it is (another value arrives as ``{"input": value}``);
- a custom route (``@serve.route("/path")``, ``@serve.deployment(route_prefix=...)``, else ``/``) below
  /v2/models/{name}/custom, any method, is one call with the body as the json (a GET may carry one).

``request.json`` is the payload, and also awaitable as in current Ray (``await request.json()``); beside it
``query_params``/``args``, ``method``, ``headers``, ``path``, ``await request.body()``.

What a call returns: a ``str`` (or another value) is the output ``output`` (a ``str`` is OIP v2 BYTES) and the
KServe v1 prediction itself; a dict is the outputs, as a Fusion predict's (its v1 prediction the whole dict);
a custom route answers with the value itself (a ``str`` as text, anything else as JSON).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Collection, Generator, Mapping
from typing import Any

from ..bundle import Bundle, Result, Row
from ..errors import BundleError
from ..outputs import Outputs, check_outputs, check_value, to_jsonable
from ..routes import METHODS

OUTPUT = "output"
DEFAULT_ROUTE = "/"


class _Ready:
    """An awaitable that is already done: ``await request.json()`` in Ray's style."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self._value
        yield  # a generator, never suspended


class JsonObject(dict[str, Any]):
    """The json payload when it is an object: itself (Flask's ``request.json``) and, called, an awaitable of it
    (Starlette's ``await request.json()``)."""

    def __call__(self) -> _Ready:
        return _Ready(self)


class JsonArray(list[Any]):
    def __call__(self) -> _Ready:
        return _Ready(self)


class JsonString(str):
    def __call__(self) -> _Ready:
        return _Ready(str(self))


class JsonInt(int):
    def __call__(self) -> _Ready:
        return _Ready(int(self))


class JsonFloat(float):
    def __call__(self) -> _Ready:
        return _Ready(float(self))


def json_payload(value: Any) -> Any:
    """The payload as ``request.json`` gives it: usable as the value and, called, awaitable. ``True``,
    ``False`` and ``None`` stay themselves (Python cannot subclass them)."""
    if isinstance(value, dict):
        return JsonObject(value)
    if isinstance(value, list):
        return JsonArray(value)
    if isinstance(value, str):
        return JsonString(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return JsonInt(value)
    if isinstance(value, float):
        return JsonFloat(value)
    return value


class Request:
    """One call's request, with what Flask's and Starlette's requests offer that a deployment reads."""

    __slots__ = ("_json", "_payload", "headers", "method", "path", "query_params")

    def __init__(
        self,
        payload: Any,
        method: str = "POST",
        path: str = DEFAULT_ROUTE,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_params: dict[str, Any] = dict(query or {})
        self.headers: dict[str, Any] = dict(headers or {})
        self._payload = to_jsonable(payload)
        self._json = json_payload(self._payload)

    @property
    def json(self) -> Any:
        return self._json

    @property
    def args(self) -> dict[str, Any]:
        """Flask's name for the query parameters."""
        return self.query_params

    def get_json(self, *_args: Any, **_kwargs: Any) -> Any:
        return self._payload

    async def body(self) -> bytes:
        return b"" if self._payload is None else json.dumps(self._payload).encode()

    def __repr__(self) -> str:
        return f"<modelship Request {self.method} {self.path}>"


def _answer(value: Any, row: int | None) -> Outputs:
    """What a call returned → its outputs."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return check_outputs(value, row)
    if value is None:
        at = "" if row is None else f" (instance {row})"
        raise BundleError("MS_ERR_OUTPUT_INVALID", f"the deployment returned None{at}; expected a value or a dict of outputs")
    return {OUTPUT: check_value(OUTPUT, value, row)}


class RayBundle(Bundle):
    style = "ray"

    def __init__(self, path: str, target: Any, routes: list[str], parameters: Mapping[str, Any] | None = None) -> None:
        super().__init__(path)
        self.target_name: str = getattr(target, "__name__", type(target).__name__)
        call = target(**(parameters or {})) if inspect.isclass(target) else target
        if not callable(call):
            raise BundleError("MS_ERR_PLUGIN_EXPORTS", f"class {self.target_name} has no __call__()", entrypoint=self.target_name)
        self.call: Callable[..., Any] = call
        self.v1_output = OUTPUT
        self.routes = [{"method": m, "path": p} for p in (routes or [DEFAULT_ROUTE]) for m in METHODS]
        self._loop: asyncio.AbstractEventLoop | None = None

    def _invoke(self, request: Request) -> Any:
        result = self.call(request)
        if inspect.isawaitable(result):
            # One loop for the worker's life: what an async deployment keeps between calls stays bound to it.
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            result = self._loop.run_until_complete(_awaited(result))
        return result

    def predict(self, rows: list[Row], method: str = "predict", wanted: Collection[str] | None = None) -> Result:
        many = len(rows) > 1
        return Result(rows=[_answer(self._invoke(Request(row)), i if many else None) for i, row in enumerate(rows)])

    def call_route(self, index: int, req: dict[str, Any]) -> tuple[int, Any]:
        if not 0 <= index < len(self.routes):
            return super().call_route(index, req)
        request = Request(req.get("body"), req.get("method", "GET"), req.get("path", DEFAULT_ROUTE), req.get("query"), req.get("headers"))
        return 200, self._invoke(request)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
