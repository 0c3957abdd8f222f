"""Custom endpoints for ml-deploy bundles: ``endpoints(app)`` with ``@app.route(path, methods=[...])``, served
below /v2/models/{name}/custom/. A small adapter of ours, not Flask: a handler takes the path's
``<params>`` as keyword arguments and may read ``modelship.routes.request`` (method, path, args, json,
headers); it returns a body (dict, list, str, number) or ``(body, status)``."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
_local = threading.local()
Handler = TypeVar("Handler", bound=Callable[..., Any])


class Request:
    __slots__ = ("args", "headers", "json", "method", "path", "view_args")

    def __init__(self, req: dict[str, Any]) -> None:
        self.method: str = req.get("method", "GET")
        self.path: str = req.get("path", "/")
        self.args: dict[str, Any] = req.get("query") or {}
        self.json: Any = req.get("body")
        self.headers: dict[str, Any] = req.get("headers") or {}
        self.view_args: dict[str, Any] = req.get("params") or {}

    def get_json(self, *args: Any, **kwargs: Any) -> Any:
        return self.json


class _RequestProxy:
    def __getattr__(self, name: str) -> Any:
        current = getattr(_local, "request", None)
        if current is None:
            raise RuntimeError("modelship.routes.request is only set while a custom route runs")
        return getattr(current, name)


request = _RequestProxy()


class App:
    """What ``endpoints(app)`` receives."""

    add_url_rule = None  # Flask's other spelling is not supported: route() only

    def __init__(self) -> None:
        self.routes: list[dict[str, str]] = []
        self.handlers: list[Callable[..., Any]] = []

    def route(self, path: str, methods: list[str] | None = None, **_options: Any) -> Callable[[Handler], Handler]:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"route path {path!r} must start with /")
        # Flask's <name> and <int:name> become :name segments.
        pattern = re.sub(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r":\1", path)
        verbs = [m.upper() for m in (methods or ["GET"])]
        for m in verbs:
            if m not in METHODS:
                raise ValueError(f"route {path}: method {m} (use {', '.join(METHODS)})")

        def register(fn: Handler) -> Handler:
            for m in verbs:
                self.routes.append({"method": m, "path": pattern})
                self.handlers.append(fn)
            return fn

        return register


def call(handler: Callable[..., Any], req: dict[str, Any]) -> tuple[int, Any]:
    """Runs a handler → (status, body)."""
    _local.request = Request(req)
    try:
        result = handler(**(req.get("params") or {}))
    finally:
        _local.request = None
    status = 200
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int):
        result, status = result
    return status, result
