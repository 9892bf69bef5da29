"""``python -m tsbandit`` runs the command line."""

from .cli import main

main()
