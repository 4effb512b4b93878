"""User-facing errors: one line that names the fix."""


class OffbenchError(Exception):
    """An error caused by bad input; the CLI prints its message as one line, without a traceback."""
