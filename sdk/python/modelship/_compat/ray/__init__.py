"""Compatibility with Ray Serve code: ``import ray`` and ``from ray import serve``. Found only when the real
ray package is not installed (this directory is last on sys.path). ``ray.get`` resolves the futures of
``serve.get_handle(name).remote(...)``; ``ray.init`` and ``ray.shutdown`` do nothing (modelship/_ray.py)."""

from modelship._ray import ObjectRef, get, ignored, is_initialized

from . import serve

init = ignored
shutdown = ignored

__all__ = ["ObjectRef", "get", "init", "is_initialized", "serve", "shutdown"]
