"""The runtime's requirements.txt environment cache: ``python -I _envcache.py`` with a JSON request on stdin.

Standard library only, run isolated (-I): nothing of a bundle's or of the cache's is importable here.

Layout of the cache directory (an emptyDir, or a volume shared by a namespace's pods):

- ``<key>-<build time>-<random>/``: a complete environment (a ``uv pip install --target`` directory), never changed or
  replaced once published. ``.modelship-env.json`` in it records the sha256 of its whole tree at build time;
  a copy that no longer matches is refused (``tampered``) and a new one is built beside it.
- ``<key>-<id>.inuse``: its use file. Serving workers hold a shared lock on it while they run; its mtime is
  the last time a pod started from the environment.
- ``<key>.lock``: builders of ``<key>`` take an exclusive ``flock`` on it: an OS lock that dies with its
  holder, so an installer killed mid-install frees it at once.
- ``<key>.tmp-<random>/``: a build in progress (under the lock) or left by a killed builder.

Collection, after a successful prepare: build directories whose key lock is free, and environments no pod
has started from for ``maxIdleDays`` whose use file no worker holds.

It finds and verifies the environment, else builds it: in a pod, the prepare init container (the only one that
mounts the cache writable) runs it and records the path for the serving container; ``modelship serve`` runs it
itself.

Output: one JSON object per line, ``{"event": ...}`` while it works, then ``{"result": {...}}`` or
``{"error": {"code", "detail"}}``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MANIFEST = ".modelship-env.json"
TAIL_LINES = 12


Request = dict[str, Any]
"""What the runtime asks (envDir, key, uv, python, requirements, timeoutS, ...), as JSON on stdin."""


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Failure(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_hash(root: str) -> str:
    """sha256 over every entry under root (path, kind, executable bit, content or link target), the manifest aside."""
    entries: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            rel = name if rel_dir == "." else rel_dir + "/" + name
            if rel == MANIFEST:
                continue
            entries.append((rel, os.path.join(dirpath, name)))
    entries.sort()

    def one(item: tuple[str, str]) -> str:
        rel, full = item
        st = os.lstat(full)
        if os.path.islink(full):
            return f"{rel}\0link\0{os.readlink(full)}\n"
        if not os.path.isfile(full):
            return f"{rel}\0other\0\n"
        mode = "x" if st.st_mode & 0o111 else "-"
        return f"{rel}\0{mode}\0{file_digest(full)}\n"

    h = hashlib.sha256()
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib releases the GIL on large reads
        for line in pool.map(one, entries):
            h.update(line.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def complete_envs(env_dir: str, key: str) -> list[str]:
    """Published environments of key, newest first."""
    try:
        names = os.listdir(env_dir)
    except FileNotFoundError:
        return []
    prefix = key + "-"
    found = [n for n in names if n.startswith(prefix) and os.path.isfile(os.path.join(env_dir, n, MANIFEST))]
    return [os.path.join(env_dir, n) for n in sorted(found, reverse=True)]


def verify(path: str) -> str | None:
    try:
        with open(os.path.join(path, MANIFEST)) as f:
            recorded = str(json.load(f)["tree"])
    except (OSError, ValueError, KeyError) as err:
        return f"its manifest cannot be read: {err}"
    actual = tree_hash(path)
    return None if actual == recorded else f"its content hash is {actual[:16]}, built as {recorded[:16]}"


def touch(path: str) -> None:
    with open(path, "a"):
        pass
    os.utime(path)


def lock(path: str, timeout_s: float, shared: bool = False) -> int:
    """flock on path (exclusive, or shared), waiting up to timeout_s; the descriptor (closing it, or dying, releases it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    deadline = time.monotonic() + timeout_s
    said = False
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return fd
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        if not said:
            emit({"event": "waiting", "lock": path})
            said = True
        if time.monotonic() > deadline:
            os.close(fd)
            raise Failure(f"waited {timeout_s:.0f} s for another install of this environment")
        time.sleep(0.2)


def try_lock(path: str, shared: bool = False) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return fd
    except OSError:
        os.close(fd)
        return None


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().split("\n")[-lines:])


def build(req: Request, final_id: str) -> str:
    env_dir: str = req["envDir"]
    key: str = req["key"]
    building = os.path.join(env_dir, f"{key}.tmp-{secrets.token_hex(4)}")
    # Copies, not hard links into uv's cache: an environment shares no inode with anything else.
    args = [req["uv"], "pip", "install", "--no-config", "--quiet", "--compile-bytecode", "--link-mode", "copy",
            "--python", req["python"], "--target", building, "-r", req["requirements"]]
    if req.get("noBuild"):
        args.append("--no-build")  # wheels only: no package's build script runs with the cache writable
    if req.get("wheelsDir"):
        args += ["--no-index", "--find-links", req["wheelsDir"]]
    elif req.get("indexUrl"):
        args += ["--index-url", req["indexUrl"]]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Off the shared volume: nothing there is read as uv's configuration or cache.
        "HOME": req["home"],
        "UV_CACHE_DIR": req["uvCache"],
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):  # a mirror with an internal CA
        if os.environ.get(name):
            env[name] = os.environ[name]
    emit({"event": "installing", "env": final_id, "index": req.get("indexHost")})
    t0 = time.monotonic()
    try:
        proc = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=req["timeoutS"])
    except subprocess.TimeoutExpired:
        shutil.rmtree(building, ignore_errors=True)
        raise Failure(f"uv did not finish within {req['timeoutS']:.0f} s") from None
    except OSError as err:
        raise Failure(f"cannot run {req['uv']} (set MODELSHIP_UV, or use the modelship/runtime-python image): {err}") from err
    if proc.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise Failure(tail(proc.stdout.decode("utf-8", "replace")))
    os.makedirs(building, exist_ok=True)  # a requirements.txt of comments installs nothing
    manifest = {"key": key, "tree": tree_hash(building), "builtAt": time.time()}
    with open(os.path.join(building, MANIFEST), "w") as f:
        json.dump(manifest, f)
    final = os.path.join(env_dir, final_id)
    os.rename(building, final)  # the publication: a new name, never over an existing environment
    touch(final + ".inuse")
    emit({"event": "installed", "env": final, "seconds": round(time.monotonic() - t0, 2)})
    return final


def collect(env_dir: str, max_idle_days: float) -> None:
    try:
        names = os.listdir(env_dir)
    except FileNotFoundError:
        return
    now = time.time()
    for name in names:
        path = os.path.join(env_dir, name)
        if ".tmp-" in name:
            fd = try_lock(os.path.join(env_dir, name.split(".tmp-")[0] + ".lock"))
            if fd is not None:  # no builder of that key: a killed one left it
                try:
                    shutil.rmtree(path, ignore_errors=True)
                    emit({"event": "collected", "path": path, "why": "left over by an install that did not finish"})
                finally:
                    os.close(fd)
        elif name.endswith(".inuse"):
            env = path[: -len(".inuse")]
            if (now - os.stat(path).st_mtime) / 86400 < max_idle_days:
                continue
            # Under its key's lock, so no prepare is verifying or touching it meanwhile; then idle again, looked at
            # under the lock; then no worker holding it.
            key_fd = try_lock(os.path.join(env_dir, os.path.basename(env).rsplit("-", 2)[0] + ".lock"))
            if key_fd is None:
                continue
            try:
                idle_days = (time.time() - os.stat(path).st_mtime) / 86400
                if idle_days < max_idle_days:
                    continue
                fd = try_lock(path)
                if fd is None:  # a worker holds it
                    continue
                try:
                    shutil.rmtree(env, ignore_errors=True)
                    os.unlink(path)
                    emit({"event": "collected", "path": env, "why": f"no pod started from it for {idle_days:.0f} days"})
                finally:
                    os.close(fd)
            finally:
                os.close(key_fd)


def prepare(req: Request) -> str:
    env_dir: str = req["envDir"]
    key: str = req["key"]
    os.makedirs(env_dir, exist_ok=True)
    seen: set[str] = set()

    def usable() -> str | None:
        for path in complete_envs(env_dir, key):
            if path in seen:
                continue
            seen.add(path)
            t0 = time.monotonic()
            problem = verify(path) if req.get("verify", True) else None
            if problem is None:
                touch(path + ".inuse")
                emit({"event": "found", "env": path, "verifySeconds": round(time.monotonic() - t0, 2)})
                return path
            emit({"event": "tampered", "env": path, "detail": problem})
        return None

    # Verifying and marking it used, under the key's lock shared: the collector (exclusive) waits meanwhile.
    shared = lock(os.path.join(env_dir, key + ".lock"), req["timeoutS"], shared=True)
    try:
        found = usable()
    finally:
        os.close(shared)
    if found:
        return found
    fd = lock(os.path.join(env_dir, key + ".lock"), req["timeoutS"])
    try:
        for name in os.listdir(env_dir):
            if name.startswith(key + ".tmp-"):
                shutil.rmtree(os.path.join(env_dir, name), ignore_errors=True)
                emit({"event": "collected", "path": name, "why": "left over by an install that did not finish"})
        found = usable()  # another pod built it while this one waited
        if found:
            return found
        # Names sort by build time (nanoseconds, fixed width): the newest is tried first.
        final_id = f"{key}-{time.time_ns():020d}-{secrets.token_hex(2)}"
        return build(req, final_id)
    finally:
        os.close(fd)


def main() -> int:
    req: Request = json.load(sys.stdin)
    try:
        env = prepare(req)
        try:
            collect(req["envDir"], req.get("maxIdleDays", 30))
        except OSError as err:  # collection is best effort
            emit({"event": "collect-failed", "detail": str(err)})
        emit({"result": {"env": env, "inuse": env + ".inuse"}})
        return 0
    except Failure as err:
        emit({"error": {"code": "MS_ERR_PYTHON_DEPS_FAILED", "detail": err.detail}})
        return 1
    except OSError as err:
        emit({"error": {"code": "MS_ERR_PYTHON_DEPS_FAILED", "detail": f"{type(err).__name__}: {err}"}})
        return 1


if __name__ == "__main__":
    sys.exit(main())
