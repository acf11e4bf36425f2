"""The one exception type for bad input, so every CLI can turn it into exit status 2."""


class InputError(ValueError):
    """Malformed or inconsistent input; the message names the offending field or value."""
