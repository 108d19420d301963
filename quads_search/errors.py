"""Errors the CLI turns into exit code 2 (user error) with a one-line message."""
from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a file, key or value. The CLI prints it on one line, exit 2."""


class ConfigError(UserError):
    """Every problem found in one config file, reported together."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def __reduce__(self):  # rebuilt from its fields when it crosses a process boundary (pools, Ray)
        return type(self), (self.source, self.problems)
