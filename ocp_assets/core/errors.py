"""Errors the engine raises for bad input or configuration: each names the file, column and row it is about."""

from typing import Self


class OcpAssetsError(Exception):
    """Base of every error ocp_assets raises on purpose (the CLI turns these into a message and exit code 2)."""

    # What the reader can do about it; the CLI prints it after the message ("ocp-assets: <what> — <hint>").
    hint: str = ""
    # Longer output behind the message (a tool's own report); the CLI shows it only with --verbose.
    details: str = ""

    def with_hint(self, hint: str) -> Self:
        self.hint = hint
        return self


class InputDataError(OcpAssetsError):
    """Input that cannot be processed; nothing is written for the partition it belongs to."""

    def __init__(self, reason: str, *, file: str | None = None, column: str | None = None, row: int | None = None):
        self.reason = reason
        self.file = file
        self.column = column
        self.row = row
        where = []
        if file is not None:
            where.append(f"file {file}")
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


class ConfigurationError(OcpAssetsError):
    """A setting that cannot work (unknown schema, a DSN PostgreSQL refuses or cannot parse, bad data-root URI)."""


class DatabaseUnreachable(OcpAssetsError):
    """PostgreSQL did not answer (refused, timed out, unknown host): not the input's fault, so the CLI exits 1 and
    running again once it answers may succeed."""
