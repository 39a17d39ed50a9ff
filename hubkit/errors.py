"""The one error type hubkit raises for problems a user can fix; the CLI prints it as one line."""

from __future__ import annotations


class HubkitError(Exception):
    """A problem with the user's input or environment, reported as a single line (no traceback)."""
