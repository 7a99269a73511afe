"""The one exception type for bad user input (files, fields, tensors), and its one-line form.

Command lines catch it and print its message as a single `error: ...` line with a non-zero exit;
library callers get an ordinary `ValueError` subclass.
"""


class BertInputError(ValueError):
    """Input that cannot be used: the message names the file, field or tensor at fault."""


def first_line(error):
    """The first non-empty line of an exception's message, or its type name if it has none."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
