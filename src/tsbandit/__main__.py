"""``python -m tsbandit`` and the ``tsbandit`` script: the command line.

The command line needs the ``cli`` extra (Typer, Rich). A core install (``pip install
tsbandit``) has the script too; without the extra it says which extra to install instead of
failing with a traceback.
"""

from __future__ import annotations

import sys

_CLI_PACKAGES = ("typer", "rich", "click")


def main() -> None:
    """Run the ``tsbandit`` command line, or explain how to install it."""
    try:
        from .cli import main as cli_main
    except ModuleNotFoundError as exc:
        if exc.name not in _CLI_PACKAGES:
            raise
        sys.stderr.write(
            f"tsbandit: the command line needs the 'cli' extra ({exc.name} is not installed).\n"
            "Install it with:  pip install 'tsbandit[cli]'   (or 'tsbandit[all]' for the "
            "service, Redis, plots and the lab's extras too)\n")
        raise SystemExit(1) from None
    cli_main()


if __name__ == "__main__":
    main()
