"""The one exception type for bad user input."""


class InputError(ValueError):
    """Bad input from the user: a file, a column, a flag or a config value.

    The CLI prints the message as one line on stderr and exits with code 2. Messages say what
    happened, what was expected and how to fix it, and end with `Received: ...` where it helps.
    """


class TrackError(Exception):
    """A team's own track raised while it trained a fold: the CLI names the track's file and the
    fold in one line, saves the traceback of the track's error, and exits with code 2."""

    def __init__(self, where: str, fold: int, cause: BaseException):
        super().__init__(f"{where} raised {type(cause).__name__}: {cause} (fold {fold + 1})")
        self.where, self.fold, self.cause = where, fold, cause
