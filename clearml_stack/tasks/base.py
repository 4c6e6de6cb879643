"""What every task shares: turning StackError into one message and a non-zero exit."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from invoke import Exit
from invoke import task as invoke_task

from .. import ui
from ..errors import StackError


def task(*args: Any, **kwargs: Any) -> Callable:
    """``invoke.task`` whose body reports StackError as one clear message and exits non-zero."""

    def decorate(body: Callable) -> Any:
        @functools.wraps(body)
        def edge(c: Any, *a: Any, **kw: Any) -> Any:
            try:
                return body(c, *a, **kw)
            except StackError as exc:
                ui.error(exc.message, exc.fix)
                raise Exit(code=exc.code) from None
            except KeyboardInterrupt:
                ui.error("interrupted")
                raise Exit(code=130) from None

        return invoke_task(*args, **kwargs)(edge)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        body, args = args[0], ()
        return decorate(body)
    return decorate


def interactive() -> bool:
    """True only when a person can answer: stdin is a terminal."""
    return sys.stdin.isatty()


def settings():  # noqa: ANN201 - imported lazily so `inv --list` stays fast
    from ..settings import load

    return load()
