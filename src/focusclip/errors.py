"""The error types of focusclip: one per failure class, so callers (and the command line) can tell them apart.

Every message is one line that names the input (file, record, option) and says what was expected.

=====================  =========================================================  ==========
class                  when                                                       CLI exit
=====================  =========================================================  ==========
:class:`UsageError`    an option or argument value is wrong (``--topk 0``, an      2
                       unknown config key, a device this machine does not have)
:class:`InputError`    an input exists but is not what it should be (a damaged     1
                       file, a record that breaks the schema, a folder given
                       for a file)
:class:`MissingInput`  an input file, folder or weights cannot be found            1
:class:`OutputError`   a command would overwrite one of its inputs or a file it    1
                       did not write
:class:`RunError`      a long job could not finish (a non-finite loss, a dataset   1
                       in which every sample is bad, an endpoint that refuses
                       the API key)
=====================  =========================================================  ==========

``UsageError`` and ``InputError`` are ``ValueError`` subclasses and ``MissingInput`` a
``FileNotFoundError``, so code that caught the built-in types keeps working.
"""

from __future__ import annotations


class FocusCLIPError(Exception):
    """Base class of every error focusclip raises on purpose."""

    exit_code = 1


class UsageError(FocusCLIPError, ValueError):
    """A wrong option or argument value."""

    exit_code = 2


class InputError(FocusCLIPError, ValueError):
    """An input that exists but does not hold what was expected."""


class MissingInput(FocusCLIPError, FileNotFoundError):  # noqa: N818 - named for what happened
    """An input file, folder or weights that cannot be found."""


class OutputError(FocusCLIPError):
    """Writing would overwrite one of the command's inputs or a file it did not write."""


class RunError(FocusCLIPError, RuntimeError):
    """A job that could not finish."""
