"""Alembic migrations of the monitor's schema (run by ``monitor migrate``; see ``monitor.migrate``)."""
