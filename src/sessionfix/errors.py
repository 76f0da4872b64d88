"""Errors the user can cause. The CLI turns each into one line on stderr and exit code 2.

Every message names the offending value and the way out.
"""


class SessionError(Exception):
    """A session, an argument or a config file that sessionfix cannot work with."""


class SessionNotFound(SessionError):
    """The session path does not exist or is not a readable folder."""


class NoAudio(SessionError):
    """The session folder holds no audio files sessionfix can read."""


class ConfigError(SessionError):
    """sessionfix.toml is malformed or names something that does not exist."""


class OutputError(SessionError):
    """An output path that cannot be written, or that would overwrite the input."""
