"""ml-deploy: ``class UserModel`` with ``load()``, ``predict(X, names)``, ``feedback(input_data, y_true,
y_predicted)``, ``endpoints(app)``; results made by ``create_response(input, target, list_metrics, topics)``."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from ..bundle import Bundle, Result, Row, Signal
from ..errors import BundleError
from ..outputs import to_jsonable
from ..routes import App, call
from ._shared import columns, matrix


def _unpack_response(value: Any) -> tuple[Any, Any, list[Signal], list[str]]:
    """ml-deploy's response (create_response / ResponseFormat, or a plain dict) → target, input, metrics, topics."""
    if isinstance(value, dict) and ("target" in value or "list_metrics" in value or "topics" in value):
        return value.get("target"), value.get("input"), list(value.get("list_metrics") or []), list(value.get("topics") or [])
    return value, None, [], []


class MlDeployBundle(Bundle):
    style = "ml-deploy"

    def __init__(self, path: str, cls: type) -> None:
        super().__init__(path)
        self.obj = cls()
        self._handlers: list[Callable[..., Any]] = []
        load = getattr(self.obj, "load", None)
        if callable(load):
            load()
        endpoints = getattr(self.obj, "endpoints", None)
        if callable(endpoints):
            app = App()
            endpoints(app)
            self.routes, self._handlers = app.routes, app.handlers

    @property
    def has_feedback(self) -> bool:
        return callable(getattr(self.obj, "feedback", None))

    def _events(self, topics: list[str], payload: Any) -> list[Signal]:
        return [{"topic": t, "value": to_jsonable(payload)} for t in topics]

    def predict(self, rows: list[Row], method: str = "predict", wanted: Collection[str] | None = None) -> Result:
        x, names = matrix(rows)
        target, _, metrics, topics = _unpack_response(self.obj.predict(x, names))
        n = len(rows)
        if target is None:
            raise BundleError("MS_ERR_OUTPUT_INVALID", "predict returned a response without a target")
        cols = columns("predict", target, n)
        events = self._events(topics, {"input": x, "target": target}) if topics else []
        return Result(columns=cols, n=n, metrics=metrics, events=events)

    def feedback(self, body: dict[str, Any]) -> tuple[Any, list[Signal], list[Signal]]:
        input_data = body.get("input_data", body.get("input"))
        y_true = body.get("y_true", body.get("truth"))
        y_predicted = body.get("y_predicted", body.get("prediction"))
        target, inp, metrics, topics = _unpack_response(self.obj.feedback(input_data, y_true, y_predicted))
        payload = {"input": inp if inp is not None else input_data, "target": target}
        return to_jsonable(target), metrics, self._events(topics, payload)

    def call_route(self, index: int, req: dict[str, Any]) -> tuple[int, Any]:
        return call(self._handlers[index], req)
