"""Deploy and call models from Python (a notebook, a script): ``Client``, over the ``modelship`` CLI.

    from modelship import Client
    client = Client(namespace="ml", storage={"endpoint": "http://127.0.0.1:9000", "bucket": "models",
                                             "access_key": "...", "secret_key": "..."})
    client.deploy("iris", "examples/iris-sklearn", format="python")   # packs, uploads, applies, waits
    client.predict("iris", {"input": [5.1, 3.5, 1.4, 0.2]})           # {'predict': 0, ...}
    client.batch("ms/iris", "s3://data/iris/", "s3://data/scored/", columns={"input": ["a", "b", "c", "d"]})
    client.delete("iris")

Everything goes through the CLI (``modelship deploy|status|predict|batch|delete``), so the object store and the
Kubernetes API are spoken by one implementation: the CLI's. It is found as ``cli=`` (a command line, e.g.
``"node /src/modelship/cli/modelship.ts"``), else ``$MODELSHIP_CLI``, else ``modelship`` on the PATH. The
cluster is the kubeconfig's (``kubeconfig=`` or ``$KUBECONFIG``), the object store ``storage=`` or the CLI's
profile (``~/.config/modelship/config.yaml``). What the CLI reports while it works (uploads, each state while
waiting) is echoed to ``sys.stderr`` line by line, where a notebook shows it. Failures raise
``ModelshipError`` with the CLI's code (``MS_ERR_PLUGIN_LOAD``, …) when there is one, and its message: the
client asks the CLI for its error as a JSON record (``$MODELSHIP_ERROR_FORMAT=json``) rather than reading
its text. The local environment of a modelship checkout is known only to ``Client.local()``. Standard
library only.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Union

from .errors import ModelshipError

EXIT_NOT_FOUND = 4  # the CLI's exit code for a ModelServing that does not exist
ERROR_PREFIX = "modelship-error: "  # the CLI's error record, one JSON object, under $MODELSHIP_ERROR_FORMAT=json

_STORAGE_ENV = {
    "endpoint": "MODELSHIP_S3_ENDPOINT",
    "cluster_endpoint": "MODELSHIP_S3_CLUSTER_ENDPOINT",
    "bucket": "MODELSHIP_BUCKET",
    "region": "MODELSHIP_S3_REGION",
    "access_key": "MODELSHIP_S3_ACCESS_KEY",
    "secret_key": "MODELSHIP_S3_SECRET_KEY",
    # Read-only keys for the cluster: the only keys a deploy puts there (the uploader's stay on this machine).
    "cluster_access_key": "MODELSHIP_S3_CLUSTER_ACCESS_KEY",
    "cluster_secret_key": "MODELSHIP_S3_CLUSTER_SECRET_KEY",
}

Json = Any
PathLike = Union[str, "os.PathLike[str]"]


def parse_failure(stderr_lines: Sequence[str], exit_code: int) -> ModelshipError:
    """The CLI's error record (its last ``modelship-error: {"code": …, "message": …}`` line) → a
    ModelshipError. Pure. A failure without a record (the CLI did not start, or crashed) keeps the last
    lines of its output as the message, and has no code."""
    record = next((line for line in reversed(stderr_lines) if line.startswith(ERROR_PREFIX)), None)
    if record is None:
        tail = " | ".join(stderr_lines[-3:]) or "no output"
        return ModelshipError(f"the modelship CLI exited with {exit_code}: {tail}", None, exit_code)
    parsed = json.loads(record[len(ERROR_PREFIX):])
    return ModelshipError(str(parsed["message"]), parsed.get("code"), exit_code)


def deploy_args(model_id: str, bundle: PathLike, namespace: str | None = None, replicas: int | None = None,
                cpu: str | None = None, memory: str | None = None, min_replicas: int | None = None,
                max_replicas: int | None = None, topic: str | None = None, env: Mapping[str, str] | None = None,
                format: str | None = None, node_selector: Mapping[str, str] | None = None,
                tolerate: Sequence[str] | None = None, wait: bool = True, timeout: float = 300,
                dry_run: bool = False) -> list[str]:
    """The CLI arguments of one deploy. Pure."""
    args = ["deploy", os.fspath(bundle), "--name", model_id, "--json"]
    if namespace:
        args += ["-n", namespace]
    for flag, value in (("--replicas", replicas), ("--cpu", cpu), ("--memory", memory), ("--min", min_replicas),
                        ("--max", max_replicas), ("--topic", topic), ("--format", format)):
        if value is not None:
            args += [flag, str(value)]
    for k, v in (env or {}).items():
        args += ["--env", f"{k}={v}"]
    for k, v in (node_selector or {}).items():
        args += ["--node-selector", f"{k}={v}"]
    for key in tolerate or []:
        args += ["--tolerate", key]
    if dry_run:
        args.append("--dry-run")
    elif wait:
        args += ["--wait", "--timeout", str(int(timeout))]
    return args


def batch_args(model: PathLike, input: str, output: str, *, format: str | None = None,
               columns: Mapping[str, str | Sequence[str]] | None = None, key_columns: Sequence[str] | None = None,
               parallelism: int | None = None, batch_size: int | None = None, name: str | None = None,
               namespace: str | None = None, wait: bool = True, output_format: str | None = None,
               max_row_errors: int | None = None, rows_per_shard: int | None = None,
               storage_secret: str | None = None, timeout: int | None = None) -> list[str]:
    """The CLI arguments of one batch prediction. Pure. ``columns``: model input → the input columns that
    make it (``{"input": ["a", "b"]}`` → ``--columns input=a,b``)."""
    args = ["batch", os.fspath(model), "--input", input, "--output", output, "--json"]
    if format is not None:
        args += ["--format", format]
    for target, cols in (columns or {}).items():
        args += ["--columns", f"{target}={cols if isinstance(cols, str) else ','.join(cols)}"]
    for key in key_columns or []:
        args += ["--key", key]
    for flag, value in (("--parallelism", parallelism), ("--batch-size", batch_size), ("--name", name),
                        ("--namespace", namespace), ("--output-format", output_format),
                        ("--max-row-errors", max_row_errors), ("--rows-per-shard", rows_per_shard),
                        ("--storage-secret", storage_secret), ("--timeout", timeout)):
        if value is not None:
            args += [flag, str(value)]
    if wait:
        args.append("--wait")
    return args


class Client:
    """modelship from Python: upload, deploy, predict, batch, status, exists, delete, wait_ready."""

    def __init__(self, kubeconfig: PathLike | None = None, namespace: str | None = None,
                 storage: Mapping[str, str] | None = None, cli: str | Sequence[str] | None = None, echo: bool = True,
                 deploy_defaults: Mapping[str, Any] | None = None, token: str | None = None) -> None:
        """``cli``: the CLI's command, a list (``["node", "/src/cli/modelship.ts"]``) or a shell-quoted string.

        ``token``: the bearer token ``predict`` sends to models with ``spec.auth`` (a Kubernetes token or an API
        key); it reaches the CLI in its environment (``$MODELSHIP_TOKEN``), never on a command line.
        """
        self.namespace = namespace
        self._defaults = dict(deploy_defaults or {})
        command = cli or os.environ.get("MODELSHIP_CLI") or "modelship"
        self._cli = shlex.split(command) if isinstance(command, str) else list(command)
        self._env = dict(os.environ)
        self._env["MODELSHIP_ERROR_FORMAT"] = "json"
        if kubeconfig:
            self._env["KUBECONFIG"] = os.fspath(kubeconfig)
        if token:
            self._env["MODELSHIP_TOKEN"] = token
        for key, value in (storage or {}).items():
            if key not in _STORAGE_ENV:
                raise ValueError(f"storage: unknown key {key!r} (known: {', '.join(sorted(_STORAGE_ENV))})")
            self._env[_STORAGE_ENV[key]] = str(value)
        self._echo = echo

    @classmethod
    def local(cls, checkout: PathLike = ".", namespace: str | None = None, **kwargs: Any) -> Client:
        """A client for the local environment of a modelship checkout (after ``npm run demo``): its cluster,
        its MinIO (bucket ``models``, which its pods reach at the Service name ``minio.minio.svc``), the demo's
        namespace (``$MODELSHIP_DEMO_NAMESPACE`` or ``modelship-demo``) unless told, and the checkout's CLI.
        The local cluster's pods go to its real node by themselves."""
        info_file = os.path.join(checkout, ".modelship", "env.json")
        try:
            with open(info_file) as f:
                info = json.load(f)
        except FileNotFoundError:
            raise ModelshipError(f"{info_file} not found: run `npm run demo` in the checkout first") from None
        root = os.path.abspath(checkout)
        s3 = info["s3"]
        node = info.get("realNode")
        storage = {"endpoint": s3["endpoint"], "bucket": "models", "access_key": s3["accessKey"],
                   "secret_key": s3["secretKey"]}
        if s3.get("readOnly"):  # the environment's read-only user: what its pods get
            storage["cluster_access_key"] = s3["readOnly"]["accessKey"]
            storage["cluster_secret_key"] = s3["readOnly"]["secretKey"]
        defaults: dict[str, Any] = {}
        if node:
            storage["cluster_endpoint"] = node["s3Endpoint"]
        else:
            # No real node (MODELSHIP_REAL_NODE=0): the process node runs the pods, on this machine.
            defaults = {"node_selector": {"type": "process"}, "tolerate": ["modelship.dev/process-node"]}
        return cls(
            kubeconfig=info["kubeconfig"],
            namespace=namespace or os.environ.get("MODELSHIP_DEMO_NAMESPACE") or "modelship-demo",
            storage=storage,
            cli=[os.path.join(root, "node_modules", ".bin", "node"), os.path.join(root, "cli", "modelship.ts")],
            deploy_defaults=defaults,
            **kwargs,
        )

    def _run(self, args: list[str]) -> str:
        """Runs the CLI; echoes its stderr as it comes; returns stdout, or raises ModelshipError."""
        try:
            proc = subprocess.Popen(self._cli + args, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        except FileNotFoundError:
            raise ModelshipError(f"the modelship CLI {self._cli[0]!r} was not found: pass cli=, or set $MODELSHIP_CLI") from None
        assert proc.stdout is not None and proc.stderr is not None
        stdout = proc.stdout
        # stdout is read beside stderr: a large answer must not fill its pipe while stderr is being read.
        out_parts: list[str] = []
        reader = threading.Thread(target=lambda: out_parts.append(stdout.read()), daemon=True)
        reader.start()
        err_lines: list[str] = []
        for raw in proc.stderr:
            line = raw.rstrip("\n")
            err_lines.append(line)
            if self._echo and not line.startswith(ERROR_PREFIX):
                print(line, file=sys.stderr, flush=True)
        reader.join()
        out = "".join(out_parts)
        code = proc.wait()
        if code != 0:
            raise parse_failure(err_lines, code)
        return out

    def _ns(self) -> list[str]:
        return ["-n", self.namespace] if self.namespace else []

    def upload_model(self, zip_or_dir: PathLike, model_id: str) -> dict[str, Json]:
        """Packs (a directory) and uploads the bundle under its sha256; nothing is applied. {uri, sha256}."""
        result: dict[str, Json] = json.loads(self._run(deploy_args(model_id, zip_or_dir, self.namespace, dry_run=True)))
        return {"uri": result["bundle"]["uri"], "sha256": result["bundle"]["sha256"], "uploaded": result["uploaded"]}

    def deploy(self, model_id: str, zip_or_dir: PathLike, wait: bool = True, timeout: float = 300,
               **options: Any) -> dict[str, Json]:
        """Deploys (or updates) a ModelServing; with ``wait``, returns once Ready or raises with the reason.

        options: replicas, cpu, memory, min_replicas, max_replicas, topic (CREATE | NONE | a topic), env (dict),
        format (js | onnx | python), node_selector (dict), tolerate (taint keys).
        """
        args = deploy_args(model_id, zip_or_dir, self.namespace, wait=wait, timeout=timeout, **{**self._defaults, **options})
        result: dict[str, Json] = json.loads(self._run(args))
        return result

    def predict(self, model_id: str, inputs: Mapping[str, Json] | Sequence[Mapping[str, Json]]) -> Json:
        """One input dict (→ one output dict) or a list of them, through the API server's service proxy."""
        # In a file, not on the command line: inputs may be large, and argv is visible to every user.
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="modelship-input-", delete=False) as f:
            json.dump(inputs, f)
        try:
            return json.loads(self._run(["predict", model_id, "-i", f.name, *self._ns()]))
        finally:
            os.unlink(f.name)

    def batch(self, model: PathLike, input: str, output: str, *, format: str | None = None,
              columns: Mapping[str, str | Sequence[str]] | None = None, key_columns: Sequence[str] | None = None,
              parallelism: int | None = None, batch_size: int | None = None, name: str | None = None,
              wait: bool = True, output_format: str | None = None, max_row_errors: int | None = None,
              rows_per_shard: int | None = None, storage_secret: str | None = None,
              timeout: int | None = None) -> dict[str, Json]:
        """Scores a dataset with a model: ``model`` is a bundle (directory or zip) or ``ms/NAME`` (a ModelServing's
        bundle); ``input`` a prefix or glob of Parquet, CSV or JSON Lines files (``format`` when the names do not
        say), ``output`` the prefix the parts go to. On a cluster it runs a BatchPrediction and returns its final
        status (with ``wait``; else its status once made); with a local ``input`` path it runs here, without a
        cluster, and returns ``{"rows", "errorRows", "output"}``. ``storage_secret``: a Secret (accessKey,
        secretKey) the batch pods read the input and write the output with; ``timeout``: seconds ``wait`` waits."""
        args = batch_args(model, input, output, format=format, columns=columns, key_columns=key_columns,
                          parallelism=parallelism, batch_size=batch_size, name=name, namespace=self.namespace, wait=wait,
                          output_format=output_format, max_row_errors=max_row_errors, rows_per_shard=rows_per_shard,
                          storage_secret=storage_secret, timeout=timeout)
        result: dict[str, Json] = json.loads(self._run(args))
        return result

    def status(self, model_id: str) -> dict[str, Json]:
        """The ModelServing as the cluster has it (spec and status)."""
        result: dict[str, Json] = json.loads(self._run(["status", model_id, "--json", *self._ns()]))
        return result

    def exists(self, model_id: str) -> bool:
        try:
            self.status(model_id)
            return True
        except ModelshipError as err:
            if err.exit_code == EXIT_NOT_FOUND:
                return False
            raise

    def wait_ready(self, model_id: str, timeout: float = 300) -> dict[str, Json]:
        """Waits for Ready; raises ModelshipError with the status reason if it fails, or on the timeout."""
        result: dict[str, Json] = json.loads(
            self._run(["status", model_id, "--wait", "--timeout", str(int(timeout)), "--json", *self._ns()])
        )
        return result

    def delete(self, model_id: str) -> None:
        self._run(["delete", model_id, *self._ns()])
