"""The one interface every bundle style implements (MLServer's ``MLModel`` plays this part there): a loaded
model answers ``predict(rows, method, wanted)`` with a ``Result``; it may take feedback and serve custom
routes. Each style lives in its own module under ``modelship.styles``; ``modelship.loader`` picks one."""

from __future__ import annotations

import abc
from collections.abc import Collection
from typing import Any

from .errors import BundleError

Row = dict[str, Any]
"""One instance: input name → value (what a Fusion predict() receives)."""
Signal = dict[str, Any]
"""A metric (``{"name", "value", ...}``) or an event (``{"topic", "value"}``) a model reported."""
RouteSpec = dict[str, str]
"""A custom route: ``{"method": "GET", "path": "/stats"}``, served below /v2/models/{name}/custom."""


class Result:
    """What one predict call produced: ``rows`` (a list of output dicts) or ``columns`` (name → array of
    length ``n``), and the plugin's metrics and events."""

    __slots__ = ("columns", "events", "metrics", "n", "rows")

    def __init__(
        self,
        rows: list[dict[str, Any]] | None = None,
        columns: dict[str, Any] | None = None,
        n: int = 0,
        metrics: list[Signal] | None = None,
        events: list[Signal] | None = None,
    ) -> None:
        self.rows = rows
        self.columns = columns
        self.n = n
        self.metrics: list[Signal] = metrics or []
        self.events: list[Signal] = events or []


class Bundle(abc.ABC):
    """The loaded model of one style. A subclass sets ``style`` and implements ``predict``; ``verbs``,
    ``v1_output``, ``inputs``, ``outputs``, ``parameters`` and ``routes`` describe it to the runtime."""

    style = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self.verbs: tuple[str, ...] = ("predict",)
        # The output a KServe v1 prediction is the value of (else the whole output dict).
        self.v1_output: str | None = None
        self.inputs: list[dict[str, Any]] | None = None
        self.outputs: list[dict[str, Any]] | None = None
        self.parameters: dict[str, Any] | None = None
        self.routes: list[RouteSpec] = []

    @property
    def has_feedback(self) -> bool:
        return False

    def metadata(self) -> dict[str, Any]:
        md: dict[str, Any] = {
            "style": self.style,
            "verbs": list(self.verbs),
            "routes": self.routes,
            "hasFeedback": self.has_feedback,
        }
        if self.inputs is not None:
            md["inputs"] = self.inputs
        if self.outputs is not None:
            md["outputs"] = self.outputs
        if self.v1_output:
            md["v1Output"] = self.v1_output
        if self.parameters:
            md["parameters"] = self.parameters
        return md

    @abc.abstractmethod
    def predict(self, rows: list[Row], method: str = "predict", wanted: Collection[str] | None = None) -> Result:
        """Answers ``rows`` (one or more instances) with ``method`` (predict, or a verb of ``verbs``);
        ``wanted`` names the outputs the caller asked for (None: all), which a style may skip computing."""

    def feedback(self, body: dict[str, Any]) -> tuple[Any, list[Signal], list[Signal]]:
        """A feedback record → (the value to answer, metrics, events)."""
        return None, [], []

    def call_route(self, index: int, req: dict[str, Any]) -> tuple[int, Any]:
        """Runs custom route ``index`` of ``routes`` on a request (method, path, params, query, headers,
        body) → (status, body)."""
        raise BundleError("MS_ERR_SERVER_INTERNAL", f"this {self.style} bundle has no custom route {index}")
