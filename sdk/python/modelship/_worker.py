"""A Python worker process of the runtime: ``python -m modelship._worker``.

It reads request frames on fd 3 and writes replies on fd 4 (modelship.wire), one request at a time, so
stdout and stderr stay the plugin's own (the runtime turns them into log lines). The first message is
``init``; then ``predict``, ``feedback`` and ``route``. Every frame gets one reply: a frame that cannot be
decoded (nesting deeper than the interpreter's limit, a bad array marker) gets MS_ERR_REQUEST_INVALID, and the
worker reads the next. A reply is ``{"ok": true, ...}`` or ``{"ok":
false, "code", "params", "trace"}``: codes as in docs/errors.md; the traceback's last lines are for the
runtime's log, never for the client.
"""

from __future__ import annotations

import fcntl
import gc
import os
import signal
import sys
import time
import traceback
from typing import Any

from .bundle import Bundle, Result
from .errors import BundleError, describe
from .loader import load_bundle
from .models import _set_current
from .outputs import check_column, to_jsonable
from .wire import Channel, FrameError

TRACE_LINES = 12
Reply = dict[str, Any]


def _failure(err: BaseException) -> Reply:
    if isinstance(err, BundleError):
        return {"ok": False, "code": err.code, "params": err.params}
    if isinstance(err, ValueError):  # modelship.InvalidInput too: the caller's mistake
        return {"ok": False, "code": "MS_ERR_INPUT_INVALID", "params": {"detail": str(err) or type(err).__name__}}
    return {"ok": False, "code": "MS_ERR_PREDICT_FAILED", "params": {"detail": describe(err)}}


def _trace(err: BaseException) -> list[str]:
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    return "".join(lines).rstrip().splitlines()[-TRACE_LINES:]


def _reply_predict(result: Result) -> Reply:
    reply: Reply = {"ok": True}
    if result.columns is not None:
        reply["cols"] = {k: check_column(k, v, result.n) for k, v in result.columns.items()}
        reply["n"] = result.n
    else:
        reply["rows"] = result.rows
    if result.metrics or result.events:
        reply["signals"] = {"metrics": to_jsonable(result.metrics), "events": to_jsonable(result.events)}
    return reply


def _undecodable(err: object) -> Reply:
    """The reply to a frame whose message could not be decoded: that request fails, the worker goes on."""
    return {"ok": False, "code": "MS_ERR_REQUEST_INVALID", "params": {"detail": f"the Python worker cannot decode it ({err})"}}


def _read(channel: Channel) -> tuple[dict[str, Any] | None, Reply | None]:
    """The next message, or an error reply for a frame that cannot be decoded (or is not a message)."""
    try:
        msg = channel.read()
    except FrameError as err:
        return None, _undecodable(err)
    if msg is not None and not isinstance(msg, dict):
        return None, _undecodable(f"a {type(msg).__name__}, not a message")
    return msg, None


def _handle(bundle: Bundle, msg: dict[str, Any]) -> Reply:
    """One request's reply."""
    op = msg.get("op")
    if op == "predict":
        result = bundle.predict(msg["rows"], msg.get("method", "predict"), msg.get("outputs"))
        return _reply_predict(result)
    if op == "feedback":
        value, metrics, events = bundle.feedback(msg["body"])
        reply: Reply = {"ok": True, "value": value}
        if metrics or events:
            reply["signals"] = {"metrics": to_jsonable(metrics), "events": to_jsonable(events)}
        return reply
    if op == "route":
        status, body = bundle.call_route(msg["index"], msg["req"])
        return {"ok": True, "status": status, "body": to_jsonable(body)}
    return {"ok": False, "code": "MS_ERR_SERVER_INTERNAL", "params": {"detail": f"unknown op {op!r}"}}


def serve(channel: Channel) -> int:
    msg, refused = _read(channel)
    if refused is not None:
        channel.write(refused)
        return 2
    if msg is None or msg.get("op") != "init":
        return 2
    try:
        bundle = load_bundle(msg["bundle"], msg.get("entrypoint") or None, msg.get("parameters") or None)
    except BaseException as err:  # whatever init raised is the model's failure, not ours
        failure = err if isinstance(err, BundleError) else BundleError("MS_ERR_PLUGIN_INIT_FAILED", describe(err))
        reply = _failure(failure)
        reply["trace"] = _trace(err)
        channel.write(reply)
        return 1
    channel.write({"ok": True, "meta": bundle.metadata()})
    # What init made (modules, the model) lives as long as the worker: out of the collector's sight, so a
    # full collection walks only what requests allocate, not hundreds of thousands of objects per pass.
    gc.freeze()
    while True:
        msg, refused = _read(channel)
        if refused is not None:
            channel.write(refused)
            continue
        if msg is None or msg.get("op") == "exit":
            return 0
        deadline = msg.get("deadline")
        if deadline is not None and time.time() * 1000 >= deadline:
            # Its caller stopped waiting while it sat in the pipe (it has had its 504): not run at all.
            channel.write({"ok": False, "code": "MS_ERR_PREDICT_TIMEOUT", "params": {"ms": "its"}})
            continue
        _set_current(msg.get("requestId"), deadline, msg.get("authorization"))
        try:
            reply = _handle(bundle, msg)
        except BaseException as err:  # SystemExit from a plugin fails its request only
            reply = _failure(err)
            if reply["code"] != "MS_ERR_INPUT_INVALID":
                reply["trace"] = _trace(err)
        try:
            channel.write(reply)
        except Exception as err:  # a value the wire cannot carry (NaN in a list, nesting too deep)
            channel.write({"ok": False, "code": "MS_ERR_OUTPUT_INVALID", "params": {"detail": describe(err)}})


def _hold_environment() -> int | None:
    """A shared lock on the requirements environment's use file, held for the worker's life (the descriptor
    stays open): the cache's collector removes only environments no worker holds (modelship/_envcache.py)."""
    path = os.environ.pop("MODELSHIP_ENV_INUSE", None)
    if not path:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd
    except OSError:
        return None


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group; the runtime decides when a worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _hold_environment()
    channel = Channel(3, 4)
    sys.stdin = open(os.devnull)
    sys.exit(serve(channel))


if __name__ == "__main__":
    main()
