"""What several command groups share: sub-app construction, common options, number parsing
and the one way a command reports an error and exits.

Exit codes: 0 success, 1 the operation failed (the store refused it, the service did not
answer), 2 bad input (an option, a store URL, a file; click uses 2 for usage errors too).
Only Typer and the standard library are imported here, so every command module can import it
without slowing ``tsbandit CMD --help``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from ..engine import Engine

#: the default store of the commands that open one (``serve`` reads TSBANDIT_STORE instead)
DEFAULT_STORE = "sqlite:///tsbandit.db"


def sub_app(help: str, **settings: Any) -> typer.Typer:
    """A command group mounted under the root (``abtest``, ``evaluate``): no completion
    commands of its own, the rest as given."""
    return typer.Typer(help=help, add_completion=False, **settings)


def store_option(help: str = "Store URL (as for serve).") -> Any:
    """``--store URL``, default :data:`DEFAULT_STORE`."""
    return typer.Option(DEFAULT_STORE, help=help)


def fail(message: object, code: int) -> NoReturn:
    """Print ``error: MESSAGE`` on standard error and exit with ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def engine_on(url: str, **options: Any) -> Iterator[Engine]:
    """An :class:`~tsbandit.engine.Engine` on the store at ``url``, closed on the way out.

    A URL the stores refuse exits with code 2, a library error inside the block with code 1,
    each printed as ``error: ...``.
    """
    from ..engine import Engine
    from ..errors import TsbanditError
    from ..stores import ShardedStore, open_store

    try:
        store = ShardedStore(open_store(url, **options))  # sharded bandits read as one
    except TsbanditError as exc:
        fail(exc, 2)
    try:
        yield Engine(store)
    except TsbanditError as exc:
        fail(exc, 1)
    finally:
        store.close()


def number(option: str, text: str, expected: str = "a number") -> float:
    """``float(text)``, or a :class:`~tsbandit.errors.ConfigurationError` naming the option.

    >>> number("--ridge", "2.5")
    2.5
    """
    from ..errors import ConfigurationError

    try:
        return float(text)
    except ValueError:
        raise ConfigurationError(f"{option} {text!r}: expected {expected}") from None


def numbers(option: str, text: str) -> list[float]:
    """Comma-separated numbers (empty items skipped), or a
    :class:`~tsbandit.errors.ConfigurationError` naming the option.

    >>> numbers("--rates", "0.030,0.036")
    [0.03, 0.036]
    """
    from ..errors import ConfigurationError

    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigurationError(
            f"{option} == {text!r}, expected comma-separated numbers like 0.030,0.036") from None
