"""One workdir, one writer: an exclusive lock on a run's output folder.

`lock_workdir(path)` takes an exclusive `fcntl.flock` on `<path>/.lock` for the life of the process and writes
the holder (pid, host, command, start time) into it. A second run on the same folder fails at once with a
`WorkdirLockedError` naming the holder. The operating system drops the lock when its process dies however it
dies, so a lock left by a killed run is simply taken over (its file still names the dead holder until the new
one overwrites it). flock is advisory and local: it does not protect a folder on a network file system that two
machines write at once (give each machine its own workdir; docs/real_models.md shows sharded sweeps).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys

from emodistill_jax.errors import UserError

LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # realpath -> open file descriptor (kept open: closing it would release the lock)


class WorkdirLockedError(UserError, RuntimeError):
  """Another live process holds the workdir."""


def _holder(path: str) -> str:
  try:
    with open(path, encoding="utf-8") as f:
      h = json.load(f)
    return f"pid {h['pid']} on {h['host']} since {h['started']} ({h['command']})"
  except (OSError, ValueError, KeyError, TypeError):
    return "another process (its lock file is being written)"


def lock_workdir(workdir: str) -> str:
  """Takes (or, in this process, keeps) the exclusive lock on `workdir`; returns the lock file's path."""
  os.makedirs(workdir, exist_ok=True)
  key = os.path.realpath(workdir)
  path = os.path.join(workdir, LOCK_FILE)
  if key in _held:
    return path
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    raise WorkdirLockedError(
        f"{workdir} is in use by {_holder(path)}; wait for it to finish, stop it, or pass another --workdir "
        "(one run writes a workdir at a time)") from None
  holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:300],
            "started": datetime.datetime.now().isoformat(timespec="seconds")}
  os.ftruncate(fd, 0)
  os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
  _held[key] = fd
  return path


def unlock_workdir(workdir: str) -> None:
  """Releases this process's lock on `workdir` (the lock also goes when the process ends)."""
  fd = _held.pop(os.path.realpath(workdir), None)
  if fd is not None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
