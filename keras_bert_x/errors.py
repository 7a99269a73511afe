"""The one exception type for bad user input (files, fields, tensors).

Command lines catch it and print its message as a single `error: ...` line with a non-zero exit;
library callers get an ordinary `ValueError` subclass.
"""


class BertInputError(ValueError):
    """Input that cannot be used: the message names the file, field or tensor at fault."""
