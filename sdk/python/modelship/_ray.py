"""What the ``ray`` and ``ray.serve`` compatibility modules (``modelship/_compat/ray``) do, so a Ray Serve
deployment runs as written: the decorators and setup calls are accepted and only remembered (which class or
function is the deployment, at which routes); ``serve.get_handle(name).remote(payload=...)`` calls the
ModelServing's dependency ``name`` (spec.dependencies) on a thread pool and returns a future that
``ray.get`` resolves, so several members run at once.

In modelship every call arrives as a request: ``serve.context.web`` is always True, and a member asked through a
handle receives the payload as its request's json. A member answers with its KServe v1 prediction: for a
Ray-style member, the value its ``__call__`` returned.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, overload

from .outputs import to_jsonable

T = TypeVar("T")
# Enough for an ensemble's members at once, and for a few requests' worth on one worker.
MAX_PARALLEL_CALLS = 32


class Registration:
    """A class or function the module declared a deployment, and the routes it declared for it."""

    __slots__ = ("routes", "target")

    def __init__(self, target: Any) -> None:
        self.target = target
        self.routes: list[str] = []


_registered: list[Registration] = []
_endpoints: dict[str, str] = {}  # serve.create_endpoint: endpoint name → route
_backends: dict[str, Any] = {}  # serve.create_backend: backend tag → class or function


def register(target: Any, route: str | None = None) -> None:
    """Remembers ``target`` as a deployment (at ``route``, when one is given)."""
    found = next((r for r in _registered if r.target is target), None)
    if found is None:
        found = Registration(target)
        _registered.append(found)
    if route and route not in found.routes:
        found.routes.append(route)


def registered_in(module_name: str) -> list[Registration]:
    """The deployments a module declared, in the order it declared them."""
    return [r for r in _registered if getattr(r.target, "__module__", None) == module_name]


def routes_of(target: Any) -> list[str]:
    found = next((r for r in _registered if r.target is target), None)
    return list(found.routes) if found else []


class Application:
    """What ``Deployment.bind()`` gives: accepted by ``serve.run``, nothing else."""

    def __init__(self, deployment: Deployment, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.deployment = deployment
        self.args = args
        self.kwargs = kwargs


class Deployment:
    """``@serve.deployment``'s result. The class or function stays in ``func_or_class`` (as in Ray);
    ``bind``, ``options`` and ``deploy`` change nothing: constructor arguments come from the manifest's
    ``parameters``."""

    def __init__(self, target: Any, name: str | None = None, route_prefix: str | None = None) -> None:
        self.func_or_class = target
        self.name: str = name or str(getattr(target, "__name__", "deployment"))
        register(target, route_prefix)

    def bind(self, *args: Any, **kwargs: Any) -> Application:
        return Application(self, args, kwargs)

    def options(self, *, route_prefix: str | None = None, **_options: Any) -> Deployment:
        if route_prefix:
            register(self.func_or_class, route_prefix)
        return self

    def deploy(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def get_handle(self, *_args: Any, **_kwargs: Any) -> Handle:
        return Handle(self.name)

    def __call__(self, *_args: Any, **_kwargs: Any) -> Any:
        raise TypeError(f"deployment {self.name} is served by modelship; it is not called directly")


@overload
def deployment(_target: T) -> Deployment: ...
@overload
def deployment(_target: None = None, **options: Any) -> Callable[[Any], Deployment]: ...
def deployment(_target: Any = None, **options: Any) -> Deployment | Callable[[Any], Deployment]:
    """``@serve.deployment`` and ``@serve.deployment(name=..., route_prefix=..., num_replicas=...)``."""
    if _target is not None and callable(_target):
        return Deployment(_target)

    def wrap(target: Any) -> Deployment:
        return Deployment(target, options.get("name"), options.get("route_prefix"))

    return wrap


def route(path: str, *_args: Any, **_options: Any) -> Callable[[T], T]:
    """``@serve.route("/path")`` (Ray 0.8): the class or function is the deployment, served at ``path``."""

    def wrap(target: T) -> T:
        register(target, path)
        return target

    return wrap


def create_endpoint(endpoint_name: str, *args: Any, route: str | None = None, **_options: Any) -> None:
    route = route or (args[0] if args and isinstance(args[0], str) else None)
    if route:
        _endpoints[endpoint_name] = route


def create_backend(func_or_class: Any, backend_tag: Any = None, *_args: Any, **_kwargs: Any) -> None:
    # Ray 0.8 took (func_or_class, tag, *init_args); later (tag, func_or_class, *init_args).
    if isinstance(func_or_class, str) and not isinstance(backend_tag, str):
        func_or_class, backend_tag = backend_tag, func_or_class
    register(func_or_class)
    if isinstance(backend_tag, str):
        _backends[backend_tag] = func_or_class


def link(endpoint_name: str, backend_tag: str, *_args: Any, **_kwargs: Any) -> None:
    if endpoint_name in _endpoints and backend_tag in _backends:
        register(_backends[backend_tag], _endpoints[endpoint_name])


def ignored(*_args: Any, **_kwargs: Any) -> None:
    """serve.init, serve.start, serve.run, serve.shutdown, serve.set_traffic, ray.init, ray.shutdown: a
    ModelServing is already running when its code runs."""
    return None


class Context:
    """``serve.context``: in modelship a call always arrives as a request."""

    web = True


context = Context()

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(MAX_PARALLEL_CALLS, thread_name_prefix="modelship-ray")
        return _executor


class ObjectRef:
    """A call in flight: ``ray.get(ref)``, ``ref.result()`` or ``await ref`` give its answer (or raise its
    error, e.g. BundleError with the member's code)."""

    def __init__(self, future: Future[Any], name: str) -> None:
        self._future = future
        self._name = name

    def result(self, timeout: float | None = None) -> Any:
        return self._future.result(timeout)

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        return f"ObjectRef(call to {self._name})"


class Handle:
    """``serve.get_handle(name)``: the ModelServing of spec.dependencies named ``name``.
    ``remote(payload=x)`` or ``remote(x)`` sends ``x`` as one request's json; other keyword arguments alone
    are sent as a dict."""

    def __init__(self, name: str) -> None:
        self.name = name

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        from .models import models

        member = models[self.name]  # an unknown name fails here, naming the known ones
        if "payload" in kwargs:
            payload = kwargs["payload"]
        elif args:
            payload = args[0]
        else:
            payload = kwargs
        instance = to_jsonable(payload)
        return ObjectRef(_pool().submit(lambda: member.predict([instance])[0]), self.name)

    def options(self, *_args: Any, **_kwargs: Any) -> Handle:
        return self

    def __repr__(self) -> str:
        return f"RayServeHandle(Endpoint={self.name!r}, modelship dependency)"


def get_handle(name: str, *_args: Any, **_kwargs: Any) -> Handle:
    return Handle(name)


def get(refs: ObjectRef | Sequence[ObjectRef], timeout: float | None = None) -> Any:
    """``ray.get``: the answer of one call, or the answers of a list of calls in its order."""
    if isinstance(refs, ObjectRef):
        return refs.result(timeout)
    return [r.result(timeout) for r in refs]


def is_initialized() -> bool:
    return True
