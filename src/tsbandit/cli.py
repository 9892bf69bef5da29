"""The ``tsbandit`` command line (Typer): a thin shell over the library, lab and service."""

from __future__ import annotations

import typer

from . import __version__

app = typer.Typer(
    name="tsbandit",
    help="Thompson-sampling personalization engine: policies, simulation lab, decision service.",
    no_args_is_help=True,
    add_completion=False,
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"tsbandit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """Thompson-sampling personalization engine."""


def main() -> None:
    """Console-script entry point."""
    app()
