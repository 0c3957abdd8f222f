"""Run a bundle in this interpreter, with the server's loader and output checks (Fusion's LocalBundleRunner).

    from modelship import LocalBundleRunner
    runner = LocalBundleRunner("examples/fusion-echo")      # a directory or a .zip
    runner.predict({"input": "hello"})                     # {'output': 'hello'}
"""

import os
import re
import shutil
import tempfile
import zipfile

from .bundle import load_bundle, to_jsonable
from .errors import BundleError
from .outputs import check_column

MANIFEST = "modelship.yaml"
MAX_ENTRIES = 10000
MAX_BYTES = 4 << 30


def _unzip(path, into):
    """Extracts a bundle zip, refusing what the runtime refuses: paths that leave the directory, links."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        if len(infos) > MAX_ENTRIES:
            raise BundleError("MS_ERR_BUNDLE_TOO_MANY_ENTRIES", "%d entries" % len(infos), count=len(infos), limit=MAX_ENTRIES)
        total = 0
        root = os.path.realpath(into)
        for info in infos:
            name = info.filename
            if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
                raise BundleError("MS_ERR_BUNDLE_ABSOLUTE_PATH", name, entry=name)
            target = os.path.realpath(os.path.join(into, name))
            if target != root and not target.startswith(root + os.sep):
                raise BundleError("MS_ERR_BUNDLE_PATH_ESCAPE", name, entry=name)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise BundleError("MS_ERR_BUNDLE_SYMLINK", name, entry=name)
            total += info.file_size
            if total > MAX_BYTES:
                raise BundleError("MS_ERR_BUNDLE_TOO_LARGE", "%d bytes" % total, size=total, limit=MAX_BYTES)
        z.extractall(into)


def read_manifest(path):
    """modelship.yaml as a dict: with PyYAML when installed, else its top-level ``key: value`` lines (all
    the runner needs: entrypoint, name)."""
    file = os.path.join(path, MANIFEST)
    if not os.path.exists(file):
        return {}
    with open(file, encoding="utf-8") as f:
        text = f.read()
    try:
        import yaml

        doc = yaml.safe_load(text) or {}
        return doc if isinstance(doc, dict) else {}
    except ImportError:
        doc = {}
        for line in text.splitlines():
            m = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*(#.*)?$", line)
            if m and m.group(2) and not m.group(2).startswith(("{", "[")):
                doc[m.group(1)] = m.group(2).strip("\"'")
        return doc


class LocalBundleRunner:
    """Loads a bundle (directory or zip) once; ``predict(dict)`` answers one instance, ``predict_batch``
    a list. Errors are ``BundleError`` (with the server's code) or what the plugin raised
    (``modelship.InvalidInput`` / ``ValueError`` for bad input)."""

    def __init__(self, bundle, entrypoint=None):
        self._tmp = None
        path = os.fspath(bundle)
        if os.path.isfile(path):
            self._tmp = tempfile.mkdtemp(prefix="modelship-bundle-")
            _unzip(path, self._tmp)
            path = self._tmp
        self.path = os.path.abspath(path)
        manifest = read_manifest(self.path)
        self.name = manifest.get("name", os.path.basename(self.path.rstrip(os.sep)))
        cwd = os.getcwd()
        try:
            self.bundle = load_bundle(self.path, entrypoint or manifest.get("entrypoint"))
        finally:
            os.chdir(cwd)

    @property
    def metadata(self):
        return self.bundle.metadata()

    def predict_batch(self, instances, method="predict"):
        result = self.bundle.predict(list(instances), method)
        if result.rows is not None:
            return [to_jsonable(r) for r in result.rows]
        cols = {k: check_column(k, v, result.n) for k, v in result.columns.items()}
        return [{k: to_jsonable(v[i]) for k, v in cols.items()} for i in range(result.n)]

    def predict(self, model_input, method="predict"):
        if not isinstance(model_input, dict):
            raise TypeError("predict() takes one instance as a dict of input names to values")
        return self.predict_batch([model_input], method)[0]

    def close(self):
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
