"""The Python client's pure parts: the CLI arguments of a deploy, and the CLI's failures as exceptions."""

import json
import os
import sys

import pytest

from modelship.client import Client, ModelshipError, batch_args, deploy_args, parse_failure


def test_deploy_args_name_every_option_once():
    args = deploy_args("iris", "bundle/", namespace="ml", replicas=2, cpu="500m", memory="1Gi", min_replicas=1,
                       max_replicas=3, topic="CREATE", env={"A": "1"}, format="python",
                       node_selector={"type": "process"}, tolerate=["t"], timeout=60)
    assert args == ["deploy", "bundle/", "--name", "iris", "--json", "-n", "ml", "--replicas", "2", "--cpu", "500m",
                    "--memory", "1Gi", "--min", "1", "--max", "3", "--topic", "CREATE", "--format", "python",
                    "--env", "A=1", "--node-selector", "type=process", "--tolerate", "t", "--wait", "--timeout", "60"]
    assert deploy_args("iris", "b.zip", dry_run=True)[-1] == "--dry-run"
    assert "--wait" not in deploy_args("iris", "b.zip", wait=False)


def test_failures_carry_the_code_and_message():
    err = parse_failure(["uploaded 10 bytes", 'modelship-error: {"code": "MS_ERR_INPUT_INVALID", "message": "invalid input: x"}'], 1)
    assert (err.code, err.message, err.exit_code) == ("MS_ERR_INPUT_INVALID", "invalid input: x", 1)
    err = parse_failure(['modelship-error: {"code": "MS_ERR_CLI_NOT_FOUND", "message": "no ModelServing ml/x"}'], 4)
    assert (err.code, err.exit_code) == ("MS_ERR_CLI_NOT_FOUND", 4)
    # An uncoded failure has no code, whatever its message says.
    err = parse_failure(['modelship-error: {"code": null, "message": "no logs could be read (MS_ERR_X: y)"}'], 1)
    assert err.code is None
    assert err.message == "no logs could be read (MS_ERR_X: y)"
    # No record (the CLI crashed): the last lines, no code.
    assert "exited with 2: boom" in str(parse_failure(["boom"], 2))


def test_the_cli_is_asked_for_error_records(tmp_path):
    # A stand-in CLI that fails the way the real one does under $MODELSHIP_ERROR_FORMAT=json.
    fake = tmp_path / "fake_cli.py"
    fake.write_text(
        "import json, os, sys\n"
        "assert os.environ['MODELSHIP_ERROR_FORMAT'] == 'json'\n"
        "sys.stderr.write('working\\n')\n"
        "sys.stderr.write('modelship-error: ' + json.dumps({'code': 'MS_ERR_CLI_NOT_FOUND', 'message': 'no ModelServing ml/x'}) + '\\n')\n"
        "sys.exit(4)\n"
    )
    client = Client(cli=[sys.executable, str(fake)], echo=False)
    assert client.exists("x") is False
    with pytest.raises(ModelshipError) as err:
        client.status("x")
    assert (err.value.code, err.value.message, err.value.exit_code) == ("MS_ERR_CLI_NOT_FOUND", "no ModelServing ml/x", 4)


def test_unknown_storage_key_and_missing_cli_are_clear():
    with pytest.raises(ValueError, match="storage: unknown key 'bukket'"):
        Client(storage={"bukket": "x"})
    with pytest.raises(ModelshipError, match="the modelship CLI '/nonexistent/modelship' was not found"):
        Client(cli="/nonexistent/modelship").status("x")


def test_a_large_answer_does_not_hang(tmp_path):
    # A stand-in CLI that writes 1 MB to stdout and a line to stderr: both pipes are read at once.
    fake = tmp_path / "fake_cli.py"
    fake.write_text("import sys\nsys.stderr.write('working\\n')\nsys.stdout.write('[' + ','.join(['1'] * 500000) + ']')\n")
    client = Client(cli=[sys.executable, str(fake)], echo=False)
    assert len(client.status("x")) == 500000


def test_local_gives_the_cluster_the_environments_read_only_keys_only(tmp_path):
    (tmp_path / ".modelship").mkdir()
    (tmp_path / ".modelship" / "env.json").write_text(json.dumps({
        "kubeconfig": "/k",
        "s3": {"endpoint": "http://127.0.0.1:9", "accessKey": "root", "secretKey": "root-secret",
               "readOnly": {"accessKey": "modelship-pods", "secretKey": "ro-secret"}},
        "realNode": {"s3Endpoint": "http://minio.minio.svc:9000"},
    }))
    env = Client.local(tmp_path)._env
    # The uploader's keys upload; the read-only ones are what a deploy puts in the cluster.
    assert env["MODELSHIP_S3_ACCESS_KEY"] == "root"
    assert env["MODELSHIP_S3_CLUSTER_ACCESS_KEY"] == "modelship-pods"
    assert env["MODELSHIP_S3_CLUSTER_SECRET_KEY"] == "ro-secret"


def test_batch_args_follow_the_cli_contract():
    args = batch_args("ms/iris", "s3://data/in/*.parquet", "s3://data/out/", format="parquet",
                      columns={"input": ["a", "b", "c", "d"], "id": "row_id"}, key_columns=["row_id", "day"],
                      parallelism=4, batch_size=512, name="score-iris", namespace="ml")
    assert args == ["batch", "ms/iris", "--input", "s3://data/in/*.parquet", "--output", "s3://data/out/", "--json",
                    "--format", "parquet", "--columns", "input=a,b,c,d", "--columns", "id=row_id",
                    "--key", "row_id", "--key", "day", "--parallelism", "4", "--batch-size", "512",
                    "--name", "score-iris", "--namespace", "ml", "--wait"]
    assert batch_args("b/", "in.csv", "out/", wait=False) == ["batch", "b/", "--input", "in.csv", "--output", "out/", "--json"]
    assert batch_args("ms/iris", "s3://d/in/", "s3://d/out/", wait=False, output_format="csv", max_row_errors=0,
                      rows_per_shard=500000, storage_secret="batch-keys", timeout=7200)[7:] == [
        "--output-format", "csv", "--max-row-errors", "0", "--rows-per-shard", "500000",
        "--storage-secret", "batch-keys", "--timeout", "7200"]


def test_batch_runs_the_cli_on_the_path_and_returns_its_status(tmp_path, monkeypatch):
    # A stand-in `modelship` on the PATH that records its arguments and prints the final status, as the CLI does.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv.json"
    fake = bin_dir / "modelship"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "sys.stderr.write('shard 1/1 done\\n')\n"
        "print(json.dumps({'rows': 150, 'errorRows': 0, 'output': '/tmp/out'}))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("MODELSHIP_CLI", raising=False)
    client = Client(namespace="ml", echo=False)
    status = client.batch("examples/iris-sklearn", "iris.csv", "/tmp/out", columns={"input": ["a", "b", "c", "d"]},
                          key_columns=["id"], batch_size=64)
    assert status == {"rows": 150, "errorRows": 0, "output": "/tmp/out"}
    assert json.loads(record.read_text()) == ["batch", "examples/iris-sklearn", "--input", "iris.csv", "--output",
                                              "/tmp/out", "--json", "--columns", "input=a,b,c,d", "--key", "id",
                                              "--batch-size", "64", "--namespace", "ml", "--wait"]
