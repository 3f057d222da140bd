"""The one exception type for bad user input."""


class InputError(ValueError):
    """Bad input from the user: a file, a column, a flag or a config value.

    The CLI prints the message as one line on stderr and exits with code 2. Messages say what
    happened, what was expected and how to fix it, and end with `Received: ...` where it helps.
    """
