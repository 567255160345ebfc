"""User-facing errors: one line, no traceback, non-zero exit from the CLI."""


class PaintprocError(Exception):
    """A problem with the user's input (file, flag, config) that the CLI reports in one line."""
