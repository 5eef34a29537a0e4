"""Errors that are the user's to fix: a config value, a flag, a file or folder they pointed at.

Launchers print such an error as one line (`error: ...`, naming what and where and what to do) and exit
with status 2; anything else is a bug in this package and keeps its traceback. The classes also derive
from the builtin a caller would catch (ValueError, FileNotFoundError), so library users lose nothing.
"""


class UserError(Exception):
  """Bad input from the user; the message names the config key, file, row or field, and the fix."""


class ConfigError(UserError, ValueError):
  """A config value (or a combination of them) that cannot work; the message names the key."""


class InputFileError(UserError, ValueError):
  """A file or folder the run reads holds something it cannot use; the message names the file."""


class MissingInputError(UserError, FileNotFoundError):
  """A file or folder the run needs does not exist; the message says which stage or setting makes it."""
