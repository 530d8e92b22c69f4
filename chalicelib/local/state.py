"""`<state-dir>/local.json`: how scripts and the CLI find a running local stack.

The stack writes it once everything answers and marks it stopped on exit, so a reader can tell
"no stack here" from "a stack that has gone away" and say which. It is written atomically
(temporary file, then rename): a reader polling for it never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_DIR = ".opencts"
STATE_FILE = "local.json"
RUNNING = "running"
STOPPED = "stopped"


def write_state(state_dir: Path, state: dict[str, Any]) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / STATE_FILE
    fd, tmp = tempfile.mkstemp(prefix=".local-", suffix=".json", dir=state_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(state, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(tmp, target)
    return target


def read_state(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def find_state(start: Path | None = None) -> Path | None:
    """The nearest `.opencts/local.json` in `start` (default: the working directory) or above."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STATE_DIR / STATE_FILE
        if candidate.is_file():
            return candidate
    return None
