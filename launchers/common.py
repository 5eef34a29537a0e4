"""Shared launcher setup: the `--config` file flag (ml_collections, presets as `file.py:preset`), the
`--workdir` and `--verbose` flags, logging, errors, and plain-text tables. Launchers stay thin: parse,
call one library function, print where the results went.

A mistake in the user's input (a flag, a config key or value, a file or folder: `errors.UserError`, or a
missing file) prints one line, `error: ...`, and exits with status 2; `--verbose` adds the traceback.
Anything else is a bug and keeps its traceback (status 1)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, flags, logging
from ml_collections import config_flags

from emodistill_jax.config_checks import check_config
from emodistill_jax.errors import UserError
from emodistill_jax.host_memory import retain_freed_memory
from emodistill_jax.locking import lock_workdir
from emodistill_jax.run_config import check_resume
from emodistill_jax.storage import write_json_atomic

CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/scenarios.py:smoke.",
                                         lock_config=True)
WORKDIR = flags.DEFINE_string("workdir", None, "Output folder; re-running with the same one resumes.")
VERBOSE = flags.DEFINE_bool("verbose", False, "On an input error, print the full traceback as well.")
USER_ERROR_STATUS = 2


OVERWRITE_ARG = "--config.overwrite"
_overwrite = False  # set by `--config.overwrite=True`, which parse_flags takes out before absl sees it


def workdir(default: str, stage: str | None = None, outputs: tuple[str, ...] | None = None,
            primary: bool = True) -> str:
  """The run's output folder (--workdir, else `default`), created and locked for this process: a second run
  on the same folder stops at once with the holder's pid and host (`emodistill_jax.locking`). With a `stage`
  name (the resumable launchers), a re-run must have the config that made the folder
  (`emodistill_jax.run_config`); `--config.overwrite=True` deletes the stage's `outputs` (None: everything in
  the folder) instead. primary=False (processes 1.. of a multi-host job): the folder is process 0's, which
  locks and checks it."""
  path = WORKDIR.value or default
  if not primary:
    return path
  lock_workdir(path)
  if stage is not None:
    check_resume(path, stage, CONFIG.value, overwrite=_overwrite, outputs=outputs)
  elif _overwrite:
    fail(f"{OVERWRITE_ARG} applies to the resumable launchers (sweep, judge, train, pipeline, study)")
  return path


def _take_overwrite(argv: Sequence[str]) -> list[str]:
  """Removes `--config.overwrite[=bool]` from argv (it is a launcher option, not a field of any config)."""
  global _overwrite
  rest = []
  for arg in argv:
    name, _, value = arg.partition("=")
    if name != OVERWRITE_ARG:
      rest.append(arg)
    elif value.lower() in ("", "true", "1"):
      _overwrite = True
    elif value.lower() not in ("false", "0"):
      fail(f"{arg}: expected True or False")
  return rest


def write_json(obj: Any, path: str) -> None:
  """Atomic JSON write (temp file + fsync + rename): the storage layer's writer."""
  write_json_atomic(obj, path)


def fail(message: str) -> None:
  """Print a user error as one line and exit with status 2."""
  print("error: " + " ".join(str(message).split()), file=sys.stderr, flush=True)
  sys.exit(USER_ERROR_STATUS)


def _config_override(argv: Sequence[str], field: str) -> str:
  """The `--config.a.b=v` argument that names `field` (for the message), else a generic name."""
  for arg in argv:
    path = arg.split("=", 1)[0]
    if path.startswith("--config.") and field in path.split(".")[1:]:
      return path
  return f"--config.{field}"


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's flag parsing with every mistake reported as one line and status 2 (absl exits 1, and an
  override of a field the config lacks raises a bare AttributeError from ml_collections)."""
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    # A config file that raises (e.g. an unknown preset) arrives wrapped with its traceback: keep the
    # flag and the file's own message.
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    message = lines[0] if len(lines) < 3 else f"{lines[0]} {lines[-1]}"
    fail(f"{message} (--helpfull lists the flags)")
  except (AttributeError, KeyError) as e:
    field = str(e).strip("\"'")
    fail(f"{_config_override(argv, field)}: the config has no field {field!r}; check the spelling against "
         "the config file given by --config")
  return []  # not reached


def _config() -> Any:
  """The parsed config. ml_collections defers a config file that cannot be loaded to the first use of
  the config (a stand-in that raises OSError), so use it here."""
  try:
    config = CONFIG.value
    config.keys()
    return config
  except OSError:
    given = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--config=")), "")
    path = given.split(":", 1)[0]
    why = "no such file" if not os.path.isfile(path) else "it is not a Python config file with get_config()"
    fail(f"--config={given}: cannot load the config file ({why}); pass --config=configs/<file>.py[:preset]")


def run(main: Callable[[Any], None]) -> None:
  """app.run with the config required; `main` receives the parsed ConfigDict. User errors become one
  line and status 2 (see the module docstring)."""
  flags.mark_flags_as_required(["config"])
  retain_freed_memory()  # before JAX allocates: see emodistill_jax.host_memory

  def _main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
      fail(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name=value)")
    if not flags.FLAGS["verbosity"].present:  # orbax and friends log every step at INFO
      logging.set_verbosity(logging.WARNING)
    try:
      config = _config()
      check_config(config)  # every value in range before any work starts
      main(config)
    except (UserError, FileNotFoundError) as e:
      if VERBOSE.value:
        traceback.print_exc()
      fail(str(e))

  sys.argv[:] = _take_overwrite(sys.argv)  # ml_collections reads the --config.* overrides from sys.argv itself
  app.run(_main, flags_parser=parse_flags)
