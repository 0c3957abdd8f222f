"""LocalBundleRunner on the repository's example bundles, with the base stack's scikit-learn."""

import os
import zipfile

import numpy as np
import pytest

from modelship import BundleError, InvalidInput, LocalBundleRunner

from conftest import EXAMPLES

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def example(name):
    return os.path.join(EXAMPLES, name)


def test_fusion_echo_is_the_seed_contract(capsys):
    runner = LocalBundleRunner(example("fusion-echo"))
    assert "Initializing the model!" in capsys.readouterr().out
    assert runner.predict({"input": "hello"}) == {"output": "hello"}
    with pytest.raises(ValueError, match="Input must contain the key 'input'"):
        runner.predict({"x": 1})


def test_hopsworks_predict_classify_regress():
    runner = LocalBundleRunner(example("hopsworks-iris"))
    assert runner.metadata["style"] == "hopsworks"
    assert runner.metadata["verbs"] == ["predict", "classify", "regress"]
    assert runner.predict_batch([{"input": SETOSA}, {"input": VIRGINICA}]) == [{"predictions": 0}, {"predictions": 2}]
    probs = runner.predict({"input": SETOSA}, "classify")["predictions"]
    assert probs == [1.0, 0.0, 0.0]
    assert runner.predict({"input": VIRGINICA}, "regress") == {"predictions": 2.0}


def test_ml_deploy_predict_feedback_and_routes():
    runner = LocalBundleRunner(example("ml-deploy-iris"))
    assert runner.predict({"input": SETOSA}) == {"y_predicted": 0}
    value, metrics, events = runner.bundle.feedback({"input": [SETOSA, VIRGINICA], "y_true": [0, 2], "y_predicted": [0, 1]})
    assert value == {"y_true": [0, 2], "y_predicted": [0, 1]}
    assert {m["name"]: m["value"] for m in metrics} == {"Accuracy": 0.5, "F1": pytest.approx(1 / 3)}
    assert [e["topic"] for e in events] == ["iris-feedback-events"]
    assert runner.metadata["routes"] == [{"method": "GET", "path": "/stats"}]
    assert runner.bundle.call_route(0, {"method": "GET", "path": "/stats"}) == (200, {"feedback_count": 2})


def test_no_code_estimator_reads_its_metadata():
    runner = LocalBundleRunner(example("iris-sklearn"))
    md = runner.metadata
    assert md["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    assert md["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]
    assert md["parameters"] == {"classes": [0, 1, 2]}
    out = runner.predict({"input": SETOSA})
    assert out["predict"] == 0
    assert sum(out["predict_proba"]) == pytest.approx(1.0)


def test_runs_a_zip_and_refuses_one_that_escapes(tmp_path):
    good = tmp_path / "echo.zip"
    with zipfile.ZipFile(good, "w") as z:
        for f in os.listdir(example("fusion-echo")):
            z.write(os.path.join(example("fusion-echo"), f), f)
    assert LocalBundleRunner(str(good)).predict({"input": 1}) == {"output": 1}
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../evil.py", "x = 1")
    with pytest.raises(BundleError) as e:
        LocalBundleRunner(str(bad))
    assert e.value.code == "MS_ERR_BUNDLE_PATH_ESCAPE"


def write(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return str(tmp_path)


@pytest.mark.parametrize(
    "result, message",
    [
        ({"a": {"nested": 1}}, 'output "a" is dict; expected a number, str, or a list or 1-D array'),
        ({"a": [1, "x"]}, 'output "a" mixes number and str (element 1)'),
        ({"a": float("nan")}, 'output "a" is nan, which JSON cannot carry'),
        ("just a string", "predict returned str; expected a dict"),
        ({}, "predict returned an empty dict"),
    ],
)
def test_outputs_outside_the_contract_name_the_key_and_type(tmp_path, result, message):
    path = write(tmp_path, {"predict.py": f"nan = float('nan')\ndef predict(x):\n    return {result!r}\n"})
    with pytest.raises(BundleError) as e:
        LocalBundleRunner(path).predict({"input": 1})
    assert e.value.code == "MS_ERR_OUTPUT_INVALID"
    assert message in e.value.detail


def test_numpy_outputs_are_converted(tmp_path):
    path = write(
        tmp_path,
        {"predict.py": "import numpy as np\ndef predict(x):\n    return {'s': np.float32(0.5), 'v': np.arange(3), 'l': np.array(['a', 'b'])}\n"},
    )
    assert LocalBundleRunner(path).predict({}) == {"s": 0.5, "v": [0, 1, 2], "l": ["a", "b"]}


def test_invalid_input_is_importable_in_a_bundle(tmp_path):
    path = write(tmp_path, {"predict.py": "from modelship import InvalidInput\ndef predict(x):\n    raise InvalidInput('need x')\n"})
    with pytest.raises(InvalidInput, match="need x"):
        LocalBundleRunner(path).predict({})


def test_load_errors_carry_codes(tmp_path):
    (tmp_path / "a").mkdir()
    syntax = write(tmp_path / "a", {"predict.py": "def predict(x)\n    return x\n"})
    with pytest.raises(BundleError) as e:
        LocalBundleRunner(syntax)
    assert e.value.code == "MS_ERR_PLUGIN_LOAD"
    assert "SyntaxError" in e.value.detail and "line 1" in e.value.detail
    (tmp_path / "b").mkdir()
    nothing = write(tmp_path / "b", {"predict.py": "def helper():\n    pass\n"})
    with pytest.raises(BundleError) as e:
        LocalBundleRunner(nothing)
    assert e.value.code == "MS_ERR_PLUGIN_EXPORTS"
    assert "found: helper" in e.value.detail


def test_wire_round_trip_keeps_arrays_raw():
    from modelship.wire import decode, encode

    frame = b"".join(bytes(c) for c in encode({"cols": {"p": np.arange(6, dtype=np.float64).reshape(2, 3)}, "n": 2}))
    body_len = int.from_bytes(frame[:4], "little")
    json_len = int.from_bytes(frame[4:8], "little")
    assert len(frame) == 8 + body_len
    msg = decode(frame[8:], json_len)
    assert msg["n"] == 2
    assert msg["cols"]["p"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_runs_on_the_standard_library_alone():
    """The worker and the runner need no third-party package: under -S (no site-packages) numpy is
    gone, and an echo bundle still loads, predicts and crosses the wire."""
    import subprocess
    import sys

    from conftest import ROOT

    script = (
        "import sys; sys.path.insert(0, {!r})\n"
        "try:\n    import numpy\n    raise SystemExit('numpy is importable')\nexcept ImportError:\n    pass\n"
        "from modelship import LocalBundleRunner\n"
        "from modelship.wire import encode, decode\n"
        "print(LocalBundleRunner({!r}).predict({{'input': [1, 2]}}))\n"
        "frame = b''.join(encode({{'a': [1.5]}}))\n"
        "print(decode(frame[8:], int.from_bytes(frame[4:8], 'little')))\n"
    ).format(ROOT, example("fusion-echo"))
    out = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-2:] == ["{'output': [1, 2]}", "{'a': [1.5]}"]
