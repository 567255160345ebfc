"""User-facing errors: one line, no traceback, non-zero exit from the CLI."""


class PaintprocError(Exception):
    """A problem with the user's input (file, flag, config) that the CLI reports in one line."""


class ConfigError(PaintprocError, ValueError):
    """A bad setting found by the checks before anything compiles (also a ValueError, as they raise)."""


def one_line(error: object) -> str:
    """An exception's message folded onto one line (its type name when the message is empty)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__
