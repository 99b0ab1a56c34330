"""The one exception type that genseq raises for bad input or state.

The CLI turns it into a one-line message and a non-zero exit; library users
catch it like any other exception.
"""


class GenseqError(Exception):
    """A problem the user can fix: bad input, a wrong file, an impossible option."""
