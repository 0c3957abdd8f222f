"""ml-deploy's response helpers, as modelship reads them: ``target`` holds the outputs (one entry per
instance), ``list_metrics`` become metrics on /metrics, ``topics`` the Kafka topics an event goes to."""

from __future__ import annotations

from typing import Any


class ResponseFormat(dict[str, Any]):
    def __init__(self, input: Any = None, target: Any = None, list_metrics: list[Any] | None = None,
                 topics: list[str] | None = None) -> None:
        super().__init__(input=input, target=target, list_metrics=list_metrics or [], topics=topics or [])


def create_response(input: Any = None, target: Any = None, list_metrics: list[Any] | None = None,
                    topics: list[str] | None = None) -> ResponseFormat:
    return ResponseFormat(input=input, target=target, list_metrics=list_metrics, topics=topics)
