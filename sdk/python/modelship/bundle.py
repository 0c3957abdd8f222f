"""Loading a bundle in one of the styles modelship serves, behind one small interface.

- Fusion: ``predict.py`` with ``init(bundle_path)`` and ``predict(model_input: dict) -> dict`` (optional
  ``predict_batch(list) -> list``).
- Hopsworks: ``class Predict`` with ``__init__()``, ``predict(inputs)``, ``classify(inputs)``, ``regress(inputs)``;
  ``inputs`` is the list of instances; the working directory is the bundle.
- ml-deploy: ``class UserModel`` with ``load()``, ``predict(X, names)``, ``feedback(input_data, y_true,
  y_predicted)``, ``endpoints(app)``; results made by ``create_response(input, target, list_metrics, topics)``.
- No code: ``model.joblib`` / ``model.pkl`` holding a scikit-learn estimator or Pipeline (or the scikit-learn
  API of XGBoost / LightGBM): ``predict`` and, where it exists, ``predict_proba``.

Every style answers ``predict(rows, method)`` with one output dict per row (``Rows``) or whole columns
(``Columns``: name → array with one entry per row), plus the metrics and events it produced.
"""

import importlib.util
import inspect
import os
import pickle
import re
import sys

from .errors import BundleError, InvalidInput
from .outputs import check_outputs, check_value

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

MODEL_FILES = ("model.joblib", "model.pkl")
METRICS_KEY = "$metrics"
EVENTS_KEY = "$events"
_COMPAT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_compat")


class Result:
    """What one predict call produced: ``rows`` (a list of output dicts) or ``columns`` (name → array of
    length ``n``), and the plugin's metrics and events."""

    __slots__ = ("rows", "columns", "n", "metrics", "events")

    def __init__(self, rows=None, columns=None, n=0, metrics=None, events=None):
        self.rows = rows
        self.columns = columns
        self.n = n
        self.metrics = metrics or []
        self.events = events or []


def to_jsonable(value):
    """numpy values → plain Python, for event payloads and route bodies."""
    if _np is not None:
        if isinstance(value, _np.ndarray):
            return value.tolist()
        if isinstance(value, _np.generic):
            return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _split_signals(result, metrics, events):
    if isinstance(result, dict) and (METRICS_KEY in result or EVENTS_KEY in result):
        result = dict(result)
        for key, into in ((METRICS_KEY, metrics), (EVENTS_KEY, events)):
            v = result.pop(key, None)
            if v is not None:
                into.extend(v if isinstance(v, list) else [v])
    return result


def _instances(rows):
    """KServe v1 instances from rows: a row that holds one input is that input's value."""
    return [next(iter(r.values())) if len(r) == 1 else r for r in rows]


def _matrix(rows, names=None):
    """A 2-D feature matrix (and the column names) from rows: one input holding a vector per row, or one
    scalar input per feature."""
    first = rows[0]
    if len(first) == 1:
        key = next(iter(first))
        data = [r.get(key) for r in rows]
        if data and not isinstance(data[0], (list, tuple)) and not (_np is not None and isinstance(data[0], _np.ndarray)):
            data = [[v] for v in data]
        cols = []
    else:
        cols = list(names) if names else list(first)
        missing = [c for c in cols if c not in first]
        if missing:
            raise InvalidInput("input %s is missing" % ", ".join(missing))
        data = [[r[c] for c in cols] for r in rows]
    if _np is None:
        return data, cols
    try:
        return _np.asarray(data), cols
    except ValueError as e:
        raise InvalidInput("the instances do not form a matrix: %s" % e)


def _len(value):
    try:
        return len(value)
    except TypeError:
        return None


def _columns(method, value, n):
    """A per-instance result (array or list, one entry per row) as columns, checked."""
    if isinstance(value, dict):
        cols = value
    else:
        cols = {"predictions": value}
    out = {}
    for key, col in cols.items():
        if _len(col) != n or isinstance(col, str):
            raise BundleError(
                "MS_ERR_OUTPUT_INVALID",
                "%s returned %s for %s %d instances; expected one prediction per instance"
                % (method, type(col).__name__ if _len(col) is None else "%d values" % _len(col), key, n),
            )
        out[key] = col
    return out


class Bundle:
    """The loaded model of one style. Subclasses set ``style`` and implement ``predict``."""

    style = ""
    verbs = ("predict",)
    v1_output = None

    def __init__(self, path):
        self.path = path
        self.inputs = None
        self.outputs = None
        self.parameters = None
        self.routes = []
        self._handlers = []

    @property
    def has_feedback(self):
        return False

    def metadata(self):
        md = {"style": self.style, "verbs": list(self.verbs), "routes": self.routes, "hasFeedback": self.has_feedback}
        if self.inputs is not None:
            md["inputs"] = self.inputs
        if self.outputs is not None:
            md["outputs"] = self.outputs
        if self.v1_output:
            md["v1Output"] = self.v1_output
        if self.parameters:
            md["parameters"] = self.parameters
        return md

    def predict(self, rows, method="predict"):
        raise NotImplementedError

    def feedback(self, body):
        return None, [], []

    def call_route(self, index, req):
        from .routes import call

        return call(self._handlers[index], req)


class FusionBundle(Bundle):
    style = "fusion"

    def __init__(self, path, module):
        super().__init__(path)
        self.module = module
        self._predict = getattr(module, "predict", None)
        self._batch = getattr(module, "predict_batch", None)
        init = getattr(module, "init", None)
        if init is not None:
            _call_init(init, path)

    def predict(self, rows, method="predict"):
        metrics, events = [], []
        if self._batch is not None and (len(rows) > 1 or self._predict is None):
            results = self._batch(rows)
            if _len(results) != len(rows):
                raise BundleError(
                    "MS_ERR_OUTPUT_INVALID",
                    "predict_batch returned %s for %d inputs; expected a list of %d dicts"
                    % (type(results).__name__, len(rows), len(rows)),
                )
        else:
            results = [self._predict(r) for r in rows]
        many = len(rows) > 1
        out = [
            check_outputs(_split_signals(r, metrics, events), i if many else None) for i, r in enumerate(results)
        ]
        return Result(rows=out, metrics=metrics, events=events)


def _call_init(fn, path):
    try:
        params = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = 1
    fn(path) if params else fn()


class HopsworksBundle(Bundle):
    style = "hopsworks"
    v1_output = "predictions"

    def __init__(self, path, cls):
        super().__init__(path)
        self.obj = cls()
        self.verbs = tuple(v for v in ("predict", "classify", "regress") if callable(getattr(self.obj, v, None)))

    def predict(self, rows, method="predict"):
        fn = getattr(self.obj, method, None)
        if fn is None:
            raise InvalidInput("this model has no %s()" % method)
        n = len(rows)
        return Result(columns=_columns(method, fn(_instances(rows)), n), n=n)


class _Response(dict):
    pass


def _unpack_response(value):
    """ml-deploy's response (create_response / ResponseFormat, or a plain dict) → target, metrics, topics."""
    if isinstance(value, dict) and ("target" in value or "list_metrics" in value or "topics" in value):
        return value.get("target"), value.get("input"), list(value.get("list_metrics") or []), list(value.get("topics") or [])
    return value, None, [], []


class MlDeployBundle(Bundle):
    style = "ml-deploy"
    v1_output = None

    def __init__(self, path, cls):
        super().__init__(path)
        self.obj = cls()
        load = getattr(self.obj, "load", None)
        if callable(load):
            load()
        endpoints = getattr(self.obj, "endpoints", None)
        if callable(endpoints):
            from .routes import App

            app = App()
            endpoints(app)
            self.routes, self._handlers = app.routes, app.handlers

    @property
    def has_feedback(self):
        return callable(getattr(self.obj, "feedback", None))

    def _events(self, topics, payload):
        return [{"topic": t, "value": to_jsonable(payload)} for t in topics]

    def predict(self, rows, method="predict"):
        X, names = _matrix(rows)
        target, _, metrics, topics = _unpack_response(self.obj.predict(X, names))
        n = len(rows)
        if target is None:
            raise BundleError("MS_ERR_OUTPUT_INVALID", "predict returned a response without a target")
        cols = _columns("predict", target, n)
        events = self._events(topics, {"input": X, "target": target}) if topics else []
        return Result(columns=cols, n=n, metrics=metrics, events=events)

    def feedback(self, body):
        input_data = body.get("input_data", body.get("input"))
        y_true = body.get("y_true", body.get("truth"))
        y_predicted = body.get("y_predicted", body.get("prediction"))
        target, inp, metrics, topics = _unpack_response(self.obj.feedback(input_data, y_true, y_predicted))
        payload = {"input": inp if inp is not None else input_data, "target": target}
        return to_jsonable(target), metrics, self._events(topics, payload)


class EstimatorBundle(Bundle):
    style = "sklearn"
    v1_output = "predict"

    def __init__(self, path, file):
        super().__init__(path)
        self.file = file
        self.model = _unpickle(os.path.join(path, file))
        if not callable(getattr(self.model, "predict", None)):
            raise BundleError(
                "MS_ERR_PLUGIN_EXPORTS", "%s holds a %s, which has no predict()" % (file, type(self.model).__name__), entrypoint=file
            )
        self.proba = callable(getattr(self.model, "predict_proba", None))
        try:  # the inputs are checked finite before they reach the worker
            import sklearn

            sklearn.set_config(assume_finite=True)
        except ImportError:
            pass
        self.feature_names = [str(n) for n in getattr(self.model, "feature_names_in_", [])] or None
        n_features = getattr(self.model, "n_features_in_", None)
        self.inputs = [{"name": "input", "datatype": "FP64", "shape": [-1, int(n_features) if n_features else -1]}]
        classes = getattr(self.model, "classes_", None)
        label_type = "FP64"
        if classes is not None and _np is not None:
            kind = _np.asarray(classes).dtype.kind
            label_type = {"i": "INT64", "u": "INT64", "b": "BOOL", "f": "FP64"}.get(kind, "BYTES")
        self.outputs = [{"name": "predict", "datatype": label_type, "shape": [-1]}]
        if self.proba:
            width = len(classes) if classes is not None else -1
            self.outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
        if classes is not None:
            self.parameters = {"classes": to_jsonable(list(classes))}

    def predict(self, rows, method="predict", wanted=None):
        if self.feature_names and len(rows[0]) > 1:
            X, _ = _matrix(rows, self.feature_names)
        else:
            X, _ = _matrix(rows)
        cols = {}
        if wanted is None or "predict" in wanted:
            cols["predict"] = self.model.predict(X)
        if self.proba and (wanted is None or "predict_proba" in wanted):
            cols["predict_proba"] = self.model.predict_proba(X)
        return Result(columns=cols, n=len(rows))


def _unpickle(path):
    try:
        import joblib

        return joblib.load(path)
    except ImportError:
        with open(path, "rb") as f:
            return pickle.load(f)


def _import(path, file):
    name = re.sub(r"\W", "_", os.path.splitext(os.path.basename(file))[0]) or "predict"
    spec = importlib.util.spec_from_file_location(name, os.path.join(path, file))
    if spec is None or spec.loader is None:
        raise BundleError("MS_ERR_PLUGIN_LOAD", "cannot import %s" % file, entrypoint=file)
    module = importlib.util.module_from_spec(spec)
    # Registered under its name, so pickles that refer to classes of the plugin module can find them.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def describe(err):
    """``Type: message`` of an exception, one line; SyntaxError keeps its file and line."""
    msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return "%s: %s" % (type(err).__name__, msg) if msg else type(err).__name__


def prepare_path(path):
    """The bundle's directory first on sys.path, the cwd the bundle (Hopsworks' relative paths), and the
    compatibility modules (ml_deploy.rest.utils, hops.hdfs) last, so a real installation wins."""
    path = os.path.abspath(path)
    if path not in sys.path:
        sys.path.insert(0, path)
    if _COMPAT not in sys.path:
        sys.path.append(_COMPAT)
    os.chdir(path)
    return path


def find_entrypoint(path):
    """The default entrypoint of a bundle without one named: predict.py, a model file, or the only .py."""
    if os.path.exists(os.path.join(path, "predict.py")):
        return "predict.py"
    for f in MODEL_FILES:
        if os.path.exists(os.path.join(path, f)):
            return f
    scripts = sorted(f for f in os.listdir(path) if f.endswith(".py"))
    if len(scripts) == 1:
        return scripts[0]
    raise BundleError(
        "MS_ERR_PLUGIN_EXPORTS",
        "has no predict.py, model.joblib or model.pkl%s; name one with entrypoint: file.py[:Class] in modelship.yaml"
        % (" and %d .py files" % len(scripts) if scripts else ""),
        entrypoint="(none)",
    )


def load_bundle(path, entrypoint=None):
    """Loads a bundle directory; raises BundleError with the code for what went wrong."""
    path = prepare_path(path)
    entrypoint = entrypoint or find_entrypoint(path)
    file, _, cls_name = entrypoint.partition(":")
    if file in MODEL_FILES or file.endswith((".joblib", ".pkl", ".pickle")):
        try:
            return EstimatorBundle(path, file)
        except BundleError:
            raise
        except Exception as e:
            raise BundleError("MS_ERR_PLUGIN_INIT_FAILED", "loading %s: %s" % (file, describe(e)))
    try:
        module = _import(path, file)
    except BundleError:
        raise
    except BaseException as e:  # noqa: B902 - a plugin may raise anything at import, SystemExit included
        raise BundleError("MS_ERR_PLUGIN_LOAD", describe(e), entrypoint=file)
    target = None
    if cls_name:
        target = getattr(module, cls_name, None)
        if not inspect.isclass(target):
            raise BundleError("MS_ERR_PLUGIN_EXPORTS", "defines no class %s" % cls_name, entrypoint=file)
    else:
        for name in ("Predict", "UserModel"):
            if inspect.isclass(getattr(module, name, None)):
                target = getattr(module, name)
                break
    try:
        if target is not None:
            if not callable(getattr(target, "predict", None)):
                raise BundleError("MS_ERR_PLUGIN_EXPORTS", "class %s has no predict()" % target.__name__, entrypoint=file)
            ml_deploy = target.__name__ == "UserModel" or callable(getattr(target, "load", None))
            return (MlDeployBundle if ml_deploy else HopsworksBundle)(path, target)
        if callable(getattr(module, "predict", None)) or callable(getattr(module, "predict_batch", None)):
            return FusionBundle(path, module)
    except BundleError:
        raise
    except BaseException as e:  # noqa: B902
        raise BundleError("MS_ERR_PLUGIN_INIT_FAILED", describe(e))
    found = sorted(n for n in vars(module) if not n.startswith("_") and callable(vars(module)[n]))
    raise BundleError(
        "MS_ERR_PLUGIN_EXPORTS",
        "defines none of predict(model_input), predict_batch(inputs), class Predict, class UserModel (found: %s)"
        % (", ".join(found) or "nothing"),
        entrypoint=file,
    )


__all__ = ["Bundle", "Result", "load_bundle", "find_entrypoint", "describe", "to_jsonable", "check_value"]
