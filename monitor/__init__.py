"""Escalation Monitor: polls news feeds, labels conflict events, flags escalation."""

__version__ = "0.1.0"
