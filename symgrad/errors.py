"""Exceptions symgrad raises: every message names the culprit and says what to do."""


class SymgradError(ValueError):
    """Base class of symgrad's user-facing errors (the CLI prints these on one line).

    >>> issubclass(SymgradError, ValueError)
    True
    """


class ParseError(SymgradError):
    """An expression string was rejected by the safe parser."""


class UnsupportedError(SymgradError):
    """An operation has no derivative rule symgrad can use."""


class InputError(SymgradError):
    """A value, symbol or shape passed by the user is missing or wrong."""
