"""The one error type the kit raises for anything a user can fix."""

from __future__ import annotations


class StackError(Exception):
    """A problem the user can act on: what went wrong, and how to fix it.

    Raised anywhere below the task layer; the task edge turns it into a
    one-message, non-zero exit (see ``clearml_stack.tasks.base``).
    """

    def __init__(self, message: str, fix: str = "", code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.code = code

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message
