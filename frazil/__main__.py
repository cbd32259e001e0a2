"""``python -m frazil`` runs the command line."""

from frazil.cli.entry import main

main()
