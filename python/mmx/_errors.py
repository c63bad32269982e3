"""mmx's errors as Python exceptions: the engine's message and, where it has one, a hint of what to do."""
import builtins


class Error(Exception):
    """An error reported by mmx. ``str(e)`` is the message; ``e.hint`` says what to do (may be empty)."""

    kind = "runtime"

    def __init__(self, message, hint=""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        return self.message + (f"\nhint: {self.hint}" if self.hint else "")


class UsageError(Error, ValueError):
    """A call mmx cannot do as asked (a bad argument, a model that cannot play the part): the CLI's exit code 2."""

    kind = "usage"


class RuntimeError(Error, builtins.RuntimeError):
    """Work that failed on its input (an unreadable image, a corrupt checkpoint, a missing file): the CLI's exit code 1."""

    kind = "runtime"


for _cls in (Error, UsageError, RuntimeError):
    _cls.__module__ = "mmx"  # shown as mmx.UsageError in tracebacks
