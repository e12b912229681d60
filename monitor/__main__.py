"""``python -m monitor`` runs the command line."""

from monitor.cli import entry_point

entry_point()
