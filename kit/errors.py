"""The one exception type for bad user input."""

import traceback


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
        # as text, so that it crosses from a tuning worker's process, where the cause may not
        self.trace = "".join(traceback.format_exception(cause))

    def __reduce__(self):
        return _rebuilt, (self.args[0], self.where, self.fold, self.trace)


def _rebuilt(message: str, where: str, fold: int, trace: str) -> TrackError:
    err = TrackError.__new__(TrackError)
    Exception.__init__(err, message)
    err.where, err.fold, err.cause, err.trace = where, fold, None, trace
    return err
