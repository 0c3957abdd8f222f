"""ml-deploy's response helpers, as modelship reads them: ``target`` holds the outputs (one entry per
instance), ``list_metrics`` become metrics on /metrics, ``topics`` the Kafka topics an event goes to."""


class ResponseFormat(dict):
    def __init__(self, input=None, target=None, list_metrics=None, topics=None):  # noqa: A002 - ml-deploy's names
        super().__init__(input=input, target=target, list_metrics=list_metrics or [], topics=topics or [])


def create_response(input=None, target=None, list_metrics=None, topics=None):  # noqa: A002
    return ResponseFormat(input=input, target=target, list_metrics=list_metrics, topics=topics)
