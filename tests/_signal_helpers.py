"""Unit functions for tests/preprocessing/test_signals.py, importable by the executors' worker processes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def take_lock_then_write_unit(folder: str, unit) -> str:
    """Hand the lock of *folder* to another run (a new token), then try to write a file."""
    from physiosync._utils import atomic_write
    from physiosync.runfolder import LOCK

    lock = Path(folder) / LOCK
    info = json.loads(lock.read_text())
    lock.write_text(json.dumps({**info, "token": "taken-over-by-a-resume"}))
    atomic_write(Path(folder) / f"fold_{unit.fold:02d}.json", "{}")
    return "written"


def slow_write_unit(folder: str, seconds: float, unit) -> str:
    """Say it started, sleep *seconds*, then write ``done_<fold>``."""
    from physiosync._utils import atomic_write

    atomic_write(Path(folder) / f"started_{unit.fold}_{os.getpid()}", "")
    time.sleep(seconds)
    atomic_write(Path(folder) / f"done_{unit.fold}", "")
    return "done"
