"""The requirements environment cache (modelship/_envcache.py), run as the runtime runs it (``python -I``, JSON on
stdin), with the real uv installing a real wheel made here from the bundle's wheels/ (no index)."""

import base64
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from conftest import ROOT

HELPER = os.path.join(ROOT, "modelship", "_envcache.py")
UV = os.environ.get("MODELSHIP_UV")

pytestmark = pytest.mark.skipif(not UV, reason="MODELSHIP_UV names the uv binary (scripts/pytest.ts sets it)")


def make_wheel(directory, name="msgreet", version="1.0", code="GREETING = 'hello'\n"):
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": code,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: modelship-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def digest(text):
        raw = hashlib.sha256(text.encode()).digest()
        return f"sha256={base64.urlsafe_b64encode(raw).rstrip(b'=').decode()},{len(text.encode())}"

    record = "".join(f"{f},{digest(t)}\n" for f, t in files.items()) + f"{info}/RECORD,,\n"
    path = os.path.join(directory, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for f, t in files.items():
            z.writestr(f, t)
        z.writestr(f"{info}/RECORD", record)
    return path


@pytest.fixture
def bundle(tmp_path):
    wheels = tmp_path / "bundle" / "wheels"
    wheels.mkdir(parents=True)
    make_wheel(str(wheels))
    (tmp_path / "bundle" / "requirements.txt").write_text("msgreet==1.0\n")
    return tmp_path


def request(tmp, **extra):
    scratch = tmp / "scratch"
    (scratch / "home").mkdir(parents=True, exist_ok=True)
    (scratch / "uv").mkdir(parents=True, exist_ok=True)
    req = {
        "envDir": str(tmp / "envs"),
        "key": "k" * 64,
        "requirements": str(tmp / "bundle" / "requirements.txt"),
        "wheelsDir": str(tmp / "bundle" / "wheels"),
        "uv": UV,
        "python": sys.executable,
        "indexUrl": None,
        "home": str(scratch / "home"),
        "uvCache": str(scratch / "uv"),
        "timeoutS": 60,
        "maxIdleDays": 30,
    }
    req.update(extra)
    return req


def start(req):
    proc = subprocess.Popen([sys.executable, "-I", HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.write(json.dumps(req).encode())
    proc.stdin.close()
    return proc


def finish(proc):
    lines = [json.loads(line) for line in proc.stdout.read().decode().splitlines()]
    proc.wait(timeout=120)
    return lines


def run(req):
    return finish(start(req))


def result(lines):
    return next(line["result"] for line in lines if "result" in line)


def events(lines, name):
    return [line for line in lines if line.get("event") == name]


def imports_greeting(env):
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {env!r}); import msgreet; print(msgreet.GREETING)"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def test_builds_once_then_finds_and_verifies(bundle):
    first = run(request(bundle))
    env = result(first)["env"]
    assert events(first, "installed") and imports_greeting(env) == "hello"
    assert os.path.isfile(env + ".inuse")
    second = run(request(bundle))
    assert result(second)["env"] == env
    assert events(second, "found") and not events(second, "installing")


def test_a_failed_install_says_why_and_leaves_nothing(bundle):
    (bundle / "bundle" / "requirements.txt").write_text("msgreet==9.9\n")
    lines = run(request(bundle))
    assert lines[-1]["error"]["code"] == "MS_ERR_PYTHON_DEPS_FAILED"
    assert "msgreet" in lines[-1]["error"]["detail"]
    assert [n for n in os.listdir(bundle / "envs") if not n.endswith(".lock")] == []


def test_a_tampered_environment_is_refused_and_another_is_built_beside_it(bundle):
    env = result(run(request(bundle)))["env"]
    with open(os.path.join(env, "msgreet", "__init__.py"), "w") as f:
        f.write("GREETING = 'planted'\n")
    lines = run(request(bundle))
    assert events(lines, "tampered")[0]["env"] == env
    rebuilt = result(lines)["env"]
    assert rebuilt != env and imports_greeting(rebuilt) == "hello"
    # The tampered copy is not replaced under whoever may run from it, and never chosen again.
    assert os.path.isdir(env)
    again = run(request(bundle))
    assert result(again)["env"] == rebuilt and not events(again, "tampered")


def test_a_killed_installer_frees_the_lock_at_once_and_its_leftovers_are_collected(bundle):
    env_dir = bundle / "envs"
    env_dir.mkdir()
    lock_path = str(env_dir / ("k" * 64 + ".lock"))
    # An installer that holds the lock and is killed mid-install (a build directory left behind).
    (env_dir / ("k" * 64 + ".tmp-dead")).mkdir()
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import fcntl, os, time; fd = os.open({lock_path!r}, os.O_RDWR | os.O_CREAT); "
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"locked"
    waiting = start(request(bundle))
    time.sleep(1.0)
    assert waiting.poll() is None  # it waits for the holder
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    t0 = time.monotonic()
    lines = finish(waiting)
    assert time.monotonic() - t0 < 30
    assert events(lines, "waiting") and events(lines, "installed")
    assert any(".tmp-dead" in e["path"] for e in events(lines, "collected"))
    assert not (env_dir / ("k" * 64 + ".tmp-dead")).exists()


def test_three_at_once_build_it_once(bundle):
    procs = [start(request(bundle)) for _ in range(3)]
    outs = [finish(p) for p in procs]
    assert sum(len(events(o, "installed")) for o in outs) == 1
    assert len({result(o)["env"] for o in outs}) == 1


def test_collects_environments_unused_for_days_unless_a_worker_holds_them(bundle):
    env = result(run(request(bundle)))["env"]
    old = time.time() - 40 * 86400
    os.utime(env + ".inuse", (old, old))
    # A worker holds it: kept.
    fd = os.open(env + ".inuse", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    other = dict(request(bundle), key="o" * 64)
    run(other)
    assert os.path.isdir(env)
    os.close(fd)
    os.utime(env + ".inuse", (old, old))
    lines = run(other)
    assert not os.path.exists(env) and not os.path.exists(env + ".inuse")
    assert any(e["path"] == env for e in events(lines, "collected"))


def test_no_build_refuses_a_source_package_so_no_build_script_runs(tmp_path):
    import tarfile

    wheels = tmp_path / "bundle" / "wheels"
    wheels.mkdir(parents=True)
    marker = tmp_path / "build-script-ran"
    src = tmp_path / "src" / "msbuild-1.0"
    src.mkdir(parents=True)
    (src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: msbuild\nVersion: 1.0\n")
    (src / "setup.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nfrom setuptools import setup\nsetup(name='msbuild', version='1.0')\n")
    with tarfile.open(wheels / "msbuild-1.0.tar.gz", "w:gz") as tar:
        tar.add(str(src), arcname="msbuild-1.0")
    (tmp_path / "bundle" / "requirements.txt").write_text("msbuild==1.0\n")
    lines = run(request(tmp_path, noBuild=True))
    assert lines[-1]["error"]["code"] == "MS_ERR_PYTHON_DEPS_FAILED"
    assert "build" in lines[-1]["error"]["detail"].lower()
    assert not marker.exists()
