"""Custom endpoints for ml-deploy bundles: ``endpoints(app)`` with ``@app.route(path, methods=[...])``, served
below /v2/models/{name}/custom/. A small adapter of ours, not Flask: a handler takes the path's
``<params>`` as keyword arguments and may read ``modelship.routes.request`` (method, path, args, json,
headers); it returns a body (dict, list, str, number) or ``(body, status)``."""

import re
import threading

_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
_local = threading.local()


class Request:
    __slots__ = ("method", "path", "args", "json", "headers", "view_args")

    def __init__(self, req):
        self.method = req.get("method", "GET")
        self.path = req.get("path", "/")
        self.args = req.get("query") or {}
        self.json = req.get("body")
        self.headers = req.get("headers") or {}
        self.view_args = req.get("params") or {}

    def get_json(self, *args, **kwargs):
        return self.json


class _RequestProxy:
    def __getattr__(self, name):
        current = getattr(_local, "request", None)
        if current is None:
            raise RuntimeError("modelship.routes.request is only set while a custom route runs")
        return getattr(current, name)


request = _RequestProxy()


class App:
    """What ``endpoints(app)`` receives."""

    def __init__(self):
        self.routes = []
        self.handlers = []

    def route(self, path, methods=None, **_options):
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("route path %r must start with /" % (path,))
        # Flask's <name> and <int:name> become :name segments.
        pattern = re.sub(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r":\1", path)
        verbs = [m.upper() for m in (methods or ["GET"])]
        for m in verbs:
            if m not in _METHODS:
                raise ValueError("route %s: method %s (use %s)" % (path, m, ", ".join(_METHODS)))

        def register(fn):
            for m in verbs:
                self.routes.append({"method": m, "path": pattern})
                self.handlers.append(fn)
            return fn

        return register

    add_url_rule = None  # Flask's other spelling is not supported: route() only


def call(handler, req):
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
