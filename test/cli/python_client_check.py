"""Run by test/cli/deploy.int.test.ts: the Python client against the real environment, through the CLI.

Deploys a JS bundle and a Python bundle, predicts, uploads again (nothing to upload), deploys a broken
bundle (raises with the status reason), deletes. Prints one JSON line of what it saw; any failed check raises.
"""

import json
import os
import sys
import tempfile
import time

from modelship import Client, ModelshipError

examples = os.environ["EXAMPLES"]
client = Client(
    namespace=os.environ["NS"],
    cli=[os.environ["NODE"], os.environ["CLI"]],
    storage={
        "endpoint": os.environ["S3_ENDPOINT"],
        "bucket": os.environ["BUCKET"],
        "access_key": os.environ["S3_ACCESS_KEY"],
        "secret_key": os.environ["S3_SECRET_KEY"],
        # What the cluster gets: read-only keys, never the two above.
        "cluster_access_key": os.environ["S3_CLUSTER_ACCESS_KEY"],
        "cluster_secret_key": os.environ["S3_CLUSTER_SECRET_KEY"],
    },
)
pin = {"node_selector": {"type": "process"}, "tolerate": ["modelship.dev/process-node"]}
seen = {}

js = client.deploy("echo-py", os.path.join(examples, "echo"), timeout=120, **pin)
assert js["url"].startswith("http://echo-py."), js
assert client.exists("echo-py")
seen["echo"] = client.predict("echo-py", {"message": "hello"})

py = client.deploy("iris-sk", os.path.join(examples, "iris-sklearn"), format="python", timeout=120, **pin)
assert py["bundle"]["sha256"], py
seen["iris"] = client.predict("iris-sk", [{"input": [5.1, 3.5, 1.4, 0.2]}, {"input": [6.7, 3.0, 5.2, 2.3]}])
assert [r["predict"] for r in seen["iris"]] == [0, 2], seen["iris"]
status = client.wait_ready("iris-sk", timeout=30)
assert status["status"]["readyReplicas"] == 1, status

again = client.upload_model(os.path.join(examples, "echo"), "echo-py")
assert again["uploaded"] is False, again
seen["again"] = again

broken = tempfile.mkdtemp(prefix="py-client-broken-")
with open(os.path.join(broken, "predict.mjs"), "w") as f:
    f.write("export function predict( { return 1 }\n")
try:
    client.deploy("broken-py", broken, timeout=90, **pin)
    raise AssertionError("a broken bundle deployed")
except ModelshipError as err:
    assert err.code == "MS_ERR_PLUGIN_LOAD", (err.code, err.message)
    seen["broken"] = {"code": err.code, "message": err.message}

try:
    client.predict("iris-sk", {"petals": [1]})
    raise AssertionError("bad input answered")
except ModelshipError as err:
    assert "MS_ERR_INPUT_INVALID" in err.message, err.message
    seen["badInput"] = err.message

for name in ("echo-py", "iris-sk", "broken-py"):
    client.delete(name)
deadline = time.time() + 60
while client.exists("echo-py"):
    if time.time() > deadline:
        raise AssertionError("echo-py still exists 60 s after delete")
    time.sleep(1)
seen["deleted"] = True
print(json.dumps(seen))
sys.stdout.flush()
