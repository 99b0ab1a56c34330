"""The one exception type that genseq raises for bad input or state.

The CLI turns it into a one-line message and a non-zero exit; library users
catch it like any other exception.
"""


class GenseqError(Exception):
    """A problem the user can fix: bad input, a wrong file, an impossible option."""


# What h5py raises, in no fixed pattern, when it reads a damaged file: readers
# catch these around their header reads and report a damaged file instead.
H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError)


def first_line(err: BaseException) -> str:
    """A library exception as one short line for a GenseqError message."""
    return (str(err).splitlines() or [type(err).__name__])[0][:120]
