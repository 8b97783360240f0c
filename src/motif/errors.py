"""User-facing errors: the CLI prints their message on one line and exits with code 2."""

from __future__ import annotations


class MotifError(Exception):
    """A problem with the user's input or environment, explained in the message."""


class ConfigError(MotifError, ValueError):
    """An invalid configuration value; the message names the field and how to fix it."""
