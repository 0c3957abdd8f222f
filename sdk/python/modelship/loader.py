"""Which style a bundle is, and loading it: ``load_bundle(path, entrypoint, parameters)`` → a ``Bundle``, or a
``BundleError`` with the code for what went wrong.

Without ``entrypoint: file.py[:Name]`` in modelship.yaml the file is ``predict.py``, a model file, or the only
.py. In the file, in this order: ``class Predict`` (Hopsworks) or ``class UserModel`` (ml-deploy); a Ray Serve
deployment it declared (``@serve.deployment``, ``@serve.route``, ``serve.create_backend``); ``predict`` /
``predict_batch`` functions (Fusion); else its one class with ``__call__`` (a Ray deployment class without a
decorator). ``Name`` picks a class (with ``predict``: Hopsworks or ml-deploy, else a Ray class with
``__call__``) or a function (Ray)."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from . import _ray
from .bundle import Bundle
from .errors import BundleError, describe
from .styles.estimator import MODEL_FILES, MODEL_SUFFIXES, EstimatorBundle
from .styles.fusion import FusionBundle
from .styles.hopsworks import HopsworksBundle
from .styles.ml_deploy import MlDeployBundle
from .styles.ray import RayBundle

COMPAT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_compat")


def prepare_path(path: str) -> str:
    """The bundle's directory first on sys.path, the cwd the bundle (Hopsworks' relative paths), and the
    compatibility modules (ml_deploy.rest.utils, hops.hdfs, ray.serve) last, so a real installation wins."""
    path = os.path.abspath(path)
    if path not in sys.path:
        sys.path.insert(0, path)
    if COMPAT_DIR not in sys.path:
        sys.path.append(COMPAT_DIR)
    os.chdir(path)
    return path


def find_entrypoint(path: str) -> str:
    """The default entrypoint of a bundle without one named: predict.py, a model file, or the only .py."""
    if os.path.exists(os.path.join(path, "predict.py")):
        return "predict.py"
    for f in MODEL_FILES:
        if os.path.exists(os.path.join(path, f)):
            return f
    scripts = sorted(f for f in os.listdir(path) if f.endswith(".py"))
    if len(scripts) == 1:
        return scripts[0]
    also = f" and {len(scripts)} .py files" if scripts else ""
    raise BundleError(
        "MS_ERR_PLUGIN_EXPORTS",
        f"has no predict.py, model.joblib or model.pkl{also}; name one with entrypoint: file.py[:Name] in modelship.yaml",
        entrypoint="(none)",
    )


def _import(path: str, file: str) -> ModuleType:
    name = re.sub(r"\W", "_", os.path.splitext(os.path.basename(file))[0]) or "predict"
    spec = importlib.util.spec_from_file_location(name, os.path.join(path, file))
    if spec is None or spec.loader is None:
        raise BundleError("MS_ERR_PLUGIN_LOAD", f"cannot import {file}", entrypoint=file)
    module = importlib.util.module_from_spec(spec)
    # Registered under its name, so pickles that refer to classes of the plugin module can find them.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _unwrap(value: Any) -> Any:
    """A Ray Deployment (ours, or the real one's when ray is installed) → its class or function."""
    return getattr(value, "func_or_class", value)


def _ray_deployments(module: ModuleType) -> list[Any]:
    """What the module declared a Ray deployment: through the compatibility shim, or real Ray Deployments."""
    found = [r.target for r in _ray.registered_in(module.__name__)]
    for value in vars(module).values():
        target = _unwrap(value)
        if target is not value and getattr(target, "__module__", None) == module.__name__ and target not in found:
            found.append(target)
    return found


def _has_call(cls: type) -> bool:
    """Whether instances of ``cls`` are callable: a ``__call__`` of its own or inherited, not object's."""
    return any("__call__" in vars(c) for c in cls.__mro__[:-1])


def _callable_classes(module: ModuleType) -> list[type]:
    """The module's own classes that have a ``__call__`` (a Ray deployment class without a decorator)."""
    return [
        v
        for v in vars(module).values()
        if inspect.isclass(v) and v.__module__ == module.__name__ and not issubclass(v, BaseException) and _has_call(v)
    ]


def _class_bundle(path: str, file: str, cls: type, parameters: Mapping[str, Any]) -> Bundle:
    if callable(getattr(cls, "predict", None)):
        ml_deploy = cls.__name__ == "UserModel" or callable(getattr(cls, "load", None))
        return (MlDeployBundle if ml_deploy else HopsworksBundle)(path, cls)
    if _has_call(cls):
        return RayBundle(path, cls, _ray.routes_of(cls), parameters)
    raise BundleError("MS_ERR_PLUGIN_EXPORTS", f"class {cls.__name__} has neither predict() nor __call__()", entrypoint=file)


def _pick(path: str, file: str, module: ModuleType, name: str, parameters: Mapping[str, Any]) -> Bundle | None:
    """The bundle of the module's entrypoint: named, or found; None when the module defines none."""
    if name:
        target = _unwrap(getattr(module, name, None))
        if inspect.isclass(target):
            return _class_bundle(path, file, target, parameters)
        if inspect.isfunction(target):
            return RayBundle(path, target, _ray.routes_of(target), parameters)
        raise BundleError("MS_ERR_PLUGIN_EXPORTS", f"defines no class or function {name}", entrypoint=file)
    for known in ("Predict", "UserModel"):
        cls = getattr(module, known, None)
        if inspect.isclass(cls):
            return _class_bundle(path, file, cls, parameters)
    deployments = _ray_deployments(module)
    if len(deployments) > 1:
        names = ", ".join(getattr(d, "__name__", "?") for d in deployments)
        raise BundleError(
            "MS_ERR_PLUGIN_EXPORTS",
            f"declares {len(deployments)} Ray deployments ({names}); name one with entrypoint: {file}:Name",
            entrypoint=file,
        )
    if deployments:
        target = deployments[0]
        return RayBundle(path, target, _ray.routes_of(target), parameters)
    if callable(getattr(module, "predict", None)) or callable(getattr(module, "predict_batch", None)):
        return FusionBundle(path, module)
    classes = _callable_classes(module)
    if len(classes) == 1:
        return RayBundle(path, classes[0], _ray.routes_of(classes[0]), parameters)
    return None


def load_bundle(path: str, entrypoint: str | None = None, parameters: Mapping[str, Any] | None = None) -> Bundle:
    """Loads a bundle directory; raises BundleError with the code for what went wrong. ``parameters`` (the
    manifest's) are a Ray deployment class's constructor arguments."""
    path = prepare_path(path)
    entrypoint = entrypoint or find_entrypoint(path)
    file, _, name = entrypoint.partition(":")
    if file in MODEL_FILES or file.endswith(MODEL_SUFFIXES):
        try:
            return EstimatorBundle(path, file)
        except BundleError:
            raise
        except Exception as e:
            raise BundleError("MS_ERR_PLUGIN_INIT_FAILED", f"loading {file}: {describe(e)}") from e
    try:
        module = _import(path, file)
    except BundleError:
        raise
    except BaseException as e:  # a plugin may raise anything at import, SystemExit included
        raise BundleError("MS_ERR_PLUGIN_LOAD", describe(e), entrypoint=file) from e
    try:
        bundle = _pick(path, file, module, name, parameters or {})
    except BundleError:
        raise
    except BaseException as e:  # whatever the model's constructor or init raised
        raise BundleError("MS_ERR_PLUGIN_INIT_FAILED", describe(e)) from e
    if bundle is not None:
        return bundle
    found = sorted(n for n, v in vars(module).items() if not n.startswith("_") and callable(v))
    raise BundleError(
        "MS_ERR_PLUGIN_EXPORTS",
        "defines none of predict(model_input), predict_batch(inputs), class Predict, class UserModel, "
        f"a Ray Serve deployment (found: {', '.join(found) or 'nothing'})",
        entrypoint=file,
    )
