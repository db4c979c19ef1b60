"""The one table mapping errors to exit codes, and the guard every command runs under.

=====  ===========================================================================
code   meaning
=====  ===========================================================================
0      success; for ``verify``: every file is authentic
1      evaluated as bad: a file is not authentic, ``log check`` found a problem
2      usage or input error: bad arguments, missing/corrupt media, bad key/passphrase,
       malformed sidecar, unknown signer, duplicate record
3      the registry is unavailable: database locked, unreachable or not migrated
130    interrupted (Ctrl-C)
=====  ===========================================================================
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from authenticity.errors import AuthenticityError, RegistryUnavailableError, UsageError

__all__ = ["EXIT_BAD", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "exit_code_for", "guarded", "report_error"]

EXIT_OK = 0
EXIT_BAD = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

_TABLE: list[tuple[type[AuthenticityError], int]] = [
    (RegistryUnavailableError, EXIT_UNAVAILABLE),
    (AuthenticityError, EXIT_USAGE),
]

P = ParamSpec("P")
R = TypeVar("R")


def exit_code_for(exc: AuthenticityError) -> int:
    """Exit code for an error: first matching class in the table."""
    return next(code for cls, code in _TABLE if isinstance(exc, cls))


def report_error(exc: AuthenticityError) -> None:
    """Print the one-line diagnostic on stderr."""
    print(f"error: {exc.diagnostics()}", file=sys.stderr)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a command; an :class:`AuthenticityError` becomes one stderr line and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AuthenticityError as exc:
            report_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None
        except OSError as exc:
            # A path the user named cannot be read or written (exists, missing folder, no permission):
            # an input error like any other, not a traceback. Commands check what they can up front.
            where = f"{exc.filename}: " if exc.filename else ""
            report_error(UsageError("usage.io", f"{where}{exc.strerror or exc}"))
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper
