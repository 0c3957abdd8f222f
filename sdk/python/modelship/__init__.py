"""modelship's Python side: the worker that serves a bundle, and the same loader for local tests.

Inside a bundle: ``from modelship import InvalidInput`` (raise it for bad input: 400 for the caller).
Locally: ``LocalBundleRunner("path/or/bundle.zip").predict({...})`` runs a bundle with the server's checks.
On a cluster: ``Client().deploy("iris", "path/to/bundle")``, then ``predict``, ``batch``, ``status``, ``delete``.
Composing models: ``from modelship import models``; ``models["svm"].predict(x)`` calls a spec.dependencies entry
(Ray Serve code: ``serve.get_handle("svm").remote(payload=x)`` and ``ray.get``, through the same handles).
Standard library only (numpy is used when the bundle's environment has it).
"""

from .client import Client
from .errors import BundleError, InvalidInput, ModelshipError
from .models import models
from .runner import LocalBundleRunner

__version__ = "0.1.0"
__all__ = ["BundleError", "Client", "InvalidInput", "LocalBundleRunner", "ModelshipError", "__version__", "models"]
