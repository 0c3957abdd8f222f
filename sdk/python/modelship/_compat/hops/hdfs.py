"""On modelship the model files are in the bundle, which is the working directory: copy_to_local() only
checks that the file is there."""

from __future__ import annotations

import os
from typing import Any


def copy_to_local(path: str, *_args: Any, **_kwargs: Any) -> str:
    name = os.path.basename(path.rstrip("/"))
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name} is not in the bundle (hops.hdfs.copy_to_local on modelship finds files in the bundle)")
    return os.path.abspath(name)
