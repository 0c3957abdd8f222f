"""``ray.serve`` as modelship reads it: deployments are declared (``@serve.deployment``, ``@serve.route``,
``create_backend`` + ``create_endpoint`` + ``link``), setup calls are accepted without effect, and
``get_handle(name)`` calls the ModelServing's dependency ``name`` (modelship/_ray.py)."""

from modelship._ray import (
    Application,
    Deployment,
    Handle,
    context,
    create_backend,
    create_endpoint,
    deployment,
    get_handle,
    ignored,
    link,
    route,
)

init = ignored
start = ignored
run = ignored
shutdown = ignored
delete = ignored
set_traffic = ignored
get_app_handle = get_handle
get_deployment_handle = get_handle

__all__ = [
    "Application",
    "Deployment",
    "Handle",
    "context",
    "create_backend",
    "create_endpoint",
    "delete",
    "deployment",
    "get_app_handle",
    "get_deployment_handle",
    "get_handle",
    "init",
    "link",
    "route",
    "run",
    "set_traffic",
    "shutdown",
    "start",
]
