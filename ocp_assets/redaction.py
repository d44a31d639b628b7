"""Passwords never reach a message: the DSN passwords a process knows of are masked in whatever it prints."""

import os
import re
import sys

PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^:/@\s]*:(?P<password>[^@\s]*)@", re.IGNORECASE)
# password=... in a keyword DSN (quoted or not) or in a URL's query (up to the next &).
PASSWORD_IN_KEYWORDS = re.compile(r"\bpassword\s*=\s*(?:'(?P<quoted>[^']*)'|(?P<password>[^\s&']+))", re.IGNORECASE)
# Where a DSN with a password can come from besides the command line.
DSN_VARIABLES = ("OCP_ASSETS_DSN", "OCP_ASSETS_TEST_DSN", "OCP_ASSETS_DAGSTER_STORAGE_URL")


def known_secrets(argv: list[str] | None = None) -> list[str]:
    """Passwords that may reach a message: those of the DSNs on the command line and in the environment."""
    found = []
    for dsn in [*(sys.argv if argv is None else argv), *(os.environ.get(name, "") for name in DSN_VARIABLES)]:
        for match in PASSWORD_IN_URL.finditer(dsn):
            found.append(match.group("password"))
        for match in PASSWORD_IN_KEYWORDS.finditer(dsn):
            found.append(match.group("quoted") or match.group("password") or "")
    return [secret for secret in found if secret]


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in known_secrets() if secrets is None else secrets:
        text = text.replace(secret, "***")
    text = PASSWORD_IN_URL.sub(lambda m: m.group(0).replace(m.group("password"), "***"), text)
    return PASSWORD_IN_KEYWORDS.sub("password=***", text)


def first_line(exc: BaseException) -> str:
    """The error's first line, passwords masked. A malformed DSN's message (psycopg quotes the DSN) is not shown."""
    if type(exc).__name__ == "ProgrammingError" and type(exc).__module__.startswith("psycopg"):
        return "the PostgreSQL DSN is malformed (expected postgresql://user@host:port/database)"
    text = str(exc).strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__)
