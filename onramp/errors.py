"""The one error type the `onramp` command turns into a single line on stderr (exit 1)."""


class OnrampError(Exception):
    """A problem the user can act on; its message is one line, without a traceback."""
