"""``python -m frazil`` runs the command line."""

from frazil.cli.main import main

main()
