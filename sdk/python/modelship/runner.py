"""Run a bundle in this interpreter, with the server's loader and output checks (Fusion's LocalBundleRunner).

    from modelship import LocalBundleRunner
    runner = LocalBundleRunner("examples/fusion-echo")      # a directory or a .zip
    runner.predict({"input": "hello"})                     # {'output': 'hello'}
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .bundle import Bundle
from .errors import BundleError
from .loader import load_bundle
from .outputs import check_column, to_jsonable

MANIFEST = "modelship.yaml"
MAX_ENTRIES = 10000
MAX_BYTES = 4 << 30


def _unzip(path: str, into: str) -> None:
    """Extracts a bundle zip, refusing what the runtime refuses: paths that leave the directory, links."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        if len(infos) > MAX_ENTRIES:
            raise BundleError("MS_ERR_BUNDLE_TOO_MANY_ENTRIES", f"{len(infos)} entries", count=len(infos), limit=MAX_ENTRIES)
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
                raise BundleError("MS_ERR_BUNDLE_TOO_LARGE", f"{total} bytes", size=total, limit=MAX_BYTES)
        z.extractall(into)


def _scalar(text: str) -> Any:
    """A YAML scalar as the runner's reader knows them: JSON numbers, true/false/null, or a string."""
    text = text.strip()
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_manifest(text: str) -> dict[str, Any]:
    """modelship.yaml's top-level ``key: value`` lines, and a mapping of scalars one level below a key (what
    the runner needs: entrypoint, name, parameters) — for an environment without PyYAML. Pure."""
    doc: dict[str, Any] = {}
    block: dict[str, Any] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        nested = re.match(r"^\s+([A-Za-z_][\w-]*):\s*(.*?)\s*(?:#.*)?$", line)
        if nested and block is not None:
            if nested.group(2):
                block[nested.group(1)] = _scalar(nested.group(2))
            continue
        block = None
        top = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*(?:#.*)?$", line)
        if not top:
            continue
        if not top.group(2):
            block = doc[top.group(1)] = {}
        elif not top.group(2).startswith(("{", "[")):
            doc[top.group(1)] = top.group(2).strip("\"'")
    return doc


def read_manifest(path: str) -> dict[str, Any]:
    """modelship.yaml as a dict: with PyYAML when installed, else ``parse_manifest``."""
    file = os.path.join(path, MANIFEST)
    if not os.path.exists(file):
        return {}
    with open(file, encoding="utf-8") as f:
        text = f.read()
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return parse_manifest(text)
    doc = yaml.safe_load(text) or {}
    return doc if isinstance(doc, dict) else {}


class LocalBundleRunner:
    """Loads a bundle (directory or zip) once; ``predict(dict)`` answers one instance, ``predict_batch``
    a list. Errors are ``BundleError`` (with the server's code) or what the plugin raised
    (``modelship.InvalidInput`` / ``ValueError`` for bad input)."""

    def __init__(self, bundle: str | os.PathLike[str], entrypoint: str | None = None) -> None:
        self._tmp: str | None = None
        path = os.fspath(bundle)
        if os.path.isfile(path):
            self._tmp = tempfile.mkdtemp(prefix="modelship-bundle-")
            _unzip(path, self._tmp)
            path = self._tmp
        self.path = os.path.abspath(path)
        manifest = read_manifest(self.path)
        self.name: str = manifest.get("name", os.path.basename(self.path.rstrip(os.sep)))
        parameters = manifest.get("parameters")
        cwd = os.getcwd()
        try:
            self.bundle: Bundle = load_bundle(
                self.path, entrypoint or manifest.get("entrypoint"), parameters if isinstance(parameters, dict) else None
            )
        finally:
            os.chdir(cwd)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.bundle.metadata()

    def predict_batch(self, instances: Iterable[dict[str, Any]], method: str = "predict") -> list[dict[str, Any]]:
        result = self.bundle.predict(list(instances), method)
        if result.rows is not None:
            return [to_jsonable(r) for r in result.rows]
        cols = {k: check_column(k, v, result.n) for k, v in (result.columns or {}).items()}
        return [{k: to_jsonable(v[i]) for k, v in cols.items()} for i in range(result.n)]

    def predict(self, model_input: dict[str, Any], method: str = "predict") -> dict[str, Any]:
        if not isinstance(model_input, dict):
            raise TypeError("predict() takes one instance as a dict of input names to values")
        return self.predict_batch([model_input], method)[0]

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> LocalBundleRunner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
