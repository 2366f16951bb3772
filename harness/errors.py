"""User-facing errors: each says what was wrong and what to do.

The CLI prints these as one line; anything else is a bug and keeps its traceback.
"""


class CondnasError(Exception):
    """Base class of every error caused by the user's input rather than a bug."""


class ConfigError(CondnasError):
    """A sweep config (YAML or mapping) is malformed or names unknown things."""


class PluginNotFoundError(CondnasError, KeyError):
    """A condenser, search algorithm, dataset or space name is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataError(CondnasError):
    """A dataset is missing, unreadable or of the wrong shape."""


class DivergedError(CondnasError):
    """Training or condensation produced a non-finite value (a step size too large, broken data)."""


def unknown_name_message(kind: str, name: object, choices: list[str]) -> str:
    """``could not resolve <kind> 'x' among choices [...]; did you mean 'y'?``"""
    import difflib

    message = f"could not resolve {kind} {name!r} among choices {sorted(choices)}"
    close = difflib.get_close_matches(str(name), choices, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message
