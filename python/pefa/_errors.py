"""Exceptions of pefa: each carries the library's code and its one-line detail.

Every failure of libidx raises a subclass of :class:`Error`, chosen by the code,
which is also the standard exception that fits, so ``except ValueError`` and
``except OSError`` work as expected:

==================  =========================  =========================================
class               also a                     library codes
==================  =========================  =========================================
``FileError``       ``OSError``                IO, NOT_PEFA, VERSION, TRUNCATED, CORRUPT,
                                               CHECKSUM, MISMATCH
``InputError``      ``ValueError``             INVALID_ARG, BAD_INPUT (and the binding's
                                               own checks of dtype, shape, ranges)
``NotFoundError``   ``KeyError``               NOT_FOUND (a missing id: ``.key``)
``StateError``      ``ValueError``             STATE (a closed index)
``NoMemoryError``   ``MemoryError``            NOMEM
==================  =========================  =========================================
"""


class Error(Exception):
    """A libidx failure.

    Attributes: ``code`` (the negative ``pefa_error``, e.g. ``pefa.ERR_CHECKSUM``),
    ``name`` (``"CHECKSUM"``), ``detail`` (the library's one line, naming the file,
    section, row or field). ``str(e)`` is ``"<detail> [<name>]"``.
    """

    code = None
    name = None
    detail = None

    def __str__(self):  # KeyError would show the repr of the message
        return str(self.args[0]) if self.args else ""


class FileError(Error, OSError):
    """The index file or its id map is missing, foreign, damaged or mismatched."""


class InputError(Error, ValueError):
    """A bad argument or bad input data (dtype, shape, NaN, range, duplicate id)."""


class NotFoundError(Error, KeyError):
    """An id or a section that is not there; ``.key`` is the id asked for."""

    key = None


class StateError(Error, ValueError):
    """A call the object cannot serve now (the index is closed)."""


class NoMemoryError(Error, MemoryError):
    """The library ran out of memory."""
