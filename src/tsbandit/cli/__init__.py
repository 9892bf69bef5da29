"""The ``tsbandit`` command line (Typer): a thin shell over the library, lab and service.

One module per command group, each imported only when one of its commands runs, so
``tsbandit --help`` imports none of them (the help lists them from the one-line descriptions in
``_LAZY``) and ``tsbandit CMD --help`` imports only CMD's module, whose heavy imports (the lab,
FastAPI, SciPy, ...) happen inside the command:

==================  ======================================  =========================
module              commands                                reaches
==================  ======================================  =========================
``cli.service``     ``serve``, ``demo``                     service, tutorial
``cli.store``       ``export``, ``sweep``                   engine, stores
``cli.lab``         ``scenarios``, ``simulate``             lab
``cli.abtest``      ``abtest`` (and ``abtest simulate``)    experiments
``cli.evaluate``    ``evaluate``                            evaluation
``cli._options``    shared option and error helpers
==================  ======================================  =========================
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["app", "main"]

#: every sub-command, imported on first use: name -> (module, attribute, one-line help), in the
#: order of the help. The attribute is a Typer app (a command group) or a command function; the
#: one-line help is the first paragraph of the command's own help (a test checks it).
_LAZY: dict[str, tuple[str, str, str]] = {
    "serve": ("tsbandit.cli.service", "serve",
              "Run the decision service (FastAPI on uvicorn); settings also from TSBANDIT_* "
              "variables."),
    "demo": ("tsbandit.cli.service", "demo",
             "Thompson sampling picks credit-card offers for simulated customers (tutorial "
             "Part 5-9)."),
    "export": ("tsbandit.cli.store", "export",
               "Write a service bandit as a library Bandit (and its event log), for offline "
               "work."),
    "sweep": ("tsbandit.cli.store", "sweep",
              "Settle decisions past their reward window (default reward, exactly once), purge "
              "consumed decisions past their retention and trim event logs; print what was "
              "done."),
    "scenarios": ("tsbandit.cli.lab", "scenarios",
                  "List the named scenarios, their defaults and the policies they accept."),
    "simulate": ("tsbandit.cli.lab", "simulate",
                 "Run a scenario: print a table, write DIR/results.json and the plots."),
    "abtest": ("tsbandit.cli.abtest", "app",
               "Bayesian A/B/n tests: analyse counts (--arm NAME=SUCCESSES/TRIALS) or simulate "
               "designs."),
    "evaluate": ("tsbandit.cli.evaluate", "app",
                 "Off-policy evaluation: estimate how a policy would have done on logged "
                 "decisions."),
}


def _load_command(name: str) -> Any:
    """The real click command of a lazy sub-command (imports its module)."""
    module, attribute, _ = _LAZY[name]
    target = getattr(importlib.import_module(module), attribute)
    if not isinstance(target, typer.Typer):
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    return command


class _LazyCommand(TyperCommand):
    """A placeholder listed in the help; running it parses the arguments with the real
    command (``--help`` included), imported only then."""

    def __init__(self, name: str, short_help: str) -> None:
        super().__init__(name, help=short_help, short_help=short_help, add_help_option=False,
                         context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True,
                                           "allow_interspersed_args": False})

    def invoke(self, ctx: Any) -> Any:
        assert self.name is not None
        real = _load_command(self.name)
        with real.make_context(ctx.info_name, list(ctx.args), parent=ctx.parent) as sub:
            return real.invoke(sub)


class _Group(TyperGroup):
    """The root group: its own commands (only the callback's options), then the lazy ones."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in _LAZY if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _LAZY:
            command = _LazyCommand(cmd_name, _LAZY[cmd_name][2])
        return command


app = typer.Typer(
    name="tsbandit",
    help="Thompson-sampling personalization engine: policies, simulation lab, decision service.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Group,
)


def _version_callback(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"tsbandit {__version__}")
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
