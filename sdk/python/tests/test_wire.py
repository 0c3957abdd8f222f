"""The worker's wire: array markers are checked against their frame, and a frame that cannot be decoded fails
its own request only. The last test runs a real worker process (``python -m modelship._worker``) on its pipes."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from modelship.wire import Channel, FrameError, decode, encode

from conftest import EXAMPLES, ROOT


def raw_frame(message, region=b""):
    """A frame as the runtime writes one, with a region the test chooses (markers need not match it); a message
    given as bytes is its JSON text already."""
    text = message if isinstance(message, bytes) else json.dumps(message, separators=(",", ":")).encode("utf-8")
    pad = (8 - len(text) % 8) % 8 if region else 0
    body = text + b"\0" * pad + region
    return struct.pack("<II", len(body), len(text)) + body


def body_of(frame):
    return frame[8:], int.from_bytes(frame[4:8], "little")


def deeply_nested(field, depth=5000):
    """A predict message whose input nests deeper than the interpreter's recursion limit (as JSON text: json
    itself could not write it)."""
    return b'{"op":"predict","rows":[{"%s":%s}]}' % (field.encode(), b"[" * depth + b"]" * depth)


@pytest.mark.parametrize(
    "marker",
    [
        ["<f8", [4], 0, 32],  # past the end of the region
        ["<f8", [2], 0, 8],  # shape and size disagree
        ["<U8", [1], 0, 8],  # not a numeric dtype of the wire
        ["<f8", [1], 4, 8],  # not on an 8-byte boundary
        ["<f8", [-1], 0, 8],
        ["<f8", [1], 0],
        5,
    ],
)
def test_a_bad_array_marker_is_a_value_error_never_a_read_outside_its_array(marker):
    frame = raw_frame({"rows": [{"x": {"$nd": marker}}]}, region=b"\1" * 8)
    with pytest.raises(ValueError, match="bad array marker"):
        decode(*body_of(frame))


def test_a_good_marker_still_reads_its_bytes():
    frame = raw_frame({"x": {"$nd": ["<f8", [2], 0, 16]}}, region=np.array([1.5, 2.5]).tobytes())
    assert decode(*body_of(frame))["x"].tolist() == [1.5, 2.5]
    msg = decode(*body_of(b"".join(bytes(c) for c in encode({"a": np.arange(3, dtype=np.int32)}))))
    assert msg["a"].tolist() == [0, 1, 2]


def test_a_frame_that_cannot_be_decoded_fails_alone_and_the_next_one_reads():
    r, w = os.pipe()
    channel = Channel(r, -1)
    with os.fdopen(w, "wb") as out:
        out.write(raw_frame({"rows": [{"x": {"$nd": ["<f8", [4], 0, 32]}}]}, region=b"\0" * 8))
        out.write(raw_frame(deeply_nested("x")))
        out.write(raw_frame({"op": "after"}))
    with pytest.raises(FrameError, match="bad array marker"):
        channel.read()
    with pytest.raises(FrameError, match="RecursionError"):
        channel.read()
    assert channel.read() == {"op": "after"}
    assert channel.read() is None


def test_the_worker_answers_an_undecodable_request_with_a_400_and_serves_the_next():
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    # The worker reads fd 3 and writes fd 4, as the runtime starts it.
    boot = (
        f"import os, runpy, sys; sys.path.insert(0, {ROOT!r})\n"
        f"a, b = os.dup({req_r}), os.dup({rep_w})\n"
        "os.dup2(a, 3); os.dup2(b, 4)\n"
        "runpy.run_module('modelship._worker', run_name='__main__')\n"
    )
    worker = subprocess.Popen([sys.executable, "-u", "-c", boot], pass_fds=(req_r, rep_w), stdout=subprocess.DEVNULL)
    os.close(req_r)
    os.close(rep_w)
    replies = Channel(rep_r, -1)
    requests = os.fdopen(req_w, "wb", buffering=0)
    try:
        requests.write(b"".join(encode({"op": "init", "bundle": os.path.join(EXAMPLES, "fusion-echo")})))
        assert replies.read()["ok"] is True
        requests.write(raw_frame({"op": "predict", "rows": [{"input": {"$nd": ["<f8", [4], 0, 32]}}]}, region=b"\0" * 8))
        requests.write(raw_frame(deeply_nested("input")))
        requests.write(raw_frame(["not", "a", "message"]))
        requests.write(b"".join(encode({"op": "predict", "rows": [{"input": "hello"}]})))
        refused = [replies.read() for _ in range(3)]
        assert [r["code"] for r in refused] == ["MS_ERR_REQUEST_INVALID"] * 3
        assert "bad array marker" in refused[0]["params"]["detail"]
        assert "RecursionError" in refused[1]["params"]["detail"]
        assert "a list, not a message" in refused[2]["params"]["detail"]
        answer = replies.read()
        assert answer["ok"] is True and answer["rows"] == [{"output": "hello"}]
        assert worker.poll() is None
        requests.write(b"".join(encode({"op": "exit"})))
        assert worker.wait(timeout=30) == 0
    finally:
        requests.close()
        if worker.poll() is None:
            worker.kill()
