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


def shown(value, limit: int = 40) -> str:
    """A value read from a file, short and cheap to print in a message: a long
    string is cut, a container is named by type and length (a crafted pickle can
    nest shared lists whose str() would never end), a huge integer by its size."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() < 64 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if isinstance(value, (list, tuple)):
        if len(value) <= 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   and (isinstance(v, float) or v.bit_length() < 64) for v in value):
            return repr(list(value))
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"
