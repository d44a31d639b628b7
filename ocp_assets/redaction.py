"""Passwords never reach a message: a DSN's password is masked where the DSN's structure puts it.

Masking is by structure (a URL's userinfo, a `password=` value), never by searching the output for the password's
text: a password of a few letters would otherwise star out those letters everywhere (`oc***-assets`), and a
password libpq split at a raw '@' would leave its other half shown.
"""

import os
import re
import sys

MASK = "***"
URL_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# A URL's userinfo with a password: scheme://USER:PASSWORD@ — the password runs to the LAST '@' of the token, so a
# raw '@' in it (which should have been %40) leaves none of it visible; more may be masked than needed, never less.
PASSWORD_IN_URL = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)(?P<password>\S*)@", re.IGNORECASE)
# password=VALUE in a URL's query: up to the next '&' (libpq's own split).
PASSWORD_IN_QUERY = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&\s]*)", re.IGNORECASE)
# password = VALUE in libpq's keyword form: quoted (backslash escapes) or up to the next space.
PASSWORD_IN_KEYWORDS = re.compile(
    r"(?<![?&])(?P<head>\bpassword\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'?|\S+)", re.IGNORECASE
)
# Where a DSN with a password can come from besides the command line.
DSN_VARIABLES = ("OCP_ASSETS_DSN", "OCP_ASSETS_TEST_DSN", "OCP_ASSETS_DAGSTER_STORAGE_URL")


def mask_passwords(text: str) -> str:
    """The text with every password of a DSN in it (URL userinfo, URL query, keyword form) replaced by ***."""
    text = PASSWORD_IN_URL.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = PASSWORD_IN_QUERY.sub(lambda m: f"{m['head']}{MASK}", text)
    return PASSWORD_IN_KEYWORDS.sub(lambda m: f"{m['head']}{MASK}", text)


def mask_dsn(dsn: str) -> str:
    """One DSN with its password masked: in a URL, the userinfo's password runs from the first ':' to the DSN's last
    '@' (raw spaces, quotes and '@' included)."""
    scheme = URL_SCHEME.match(dsn)
    if scheme and "@" in dsn:
        at = dsn.rfind("@")
        user, colon, password = dsn[scheme.end() : at].partition(":")
        if colon and password:
            dsn = f"{scheme.group(0)}{user}:{MASK}{dsn[at:]}"
    return mask_passwords(dsn)


def known_dsns(argv: list[str] | None = None) -> list[str]:
    """The DSNs holding a password that may reach a message: on the command line (`--dsn X` or `--dsn=X`) and in
    the environment, longest first."""
    found = set()
    for value in [*(sys.argv if argv is None else argv), *(os.environ.get(name, "") for name in DSN_VARIABLES)]:
        for candidate in (value, value.partition("=")[2] if value.startswith("--") else ""):
            if candidate and mask_dsn(candidate) != candidate:
                found.add(candidate)
    return sorted(found, key=len, reverse=True)


def redact(text: str, dsns: list[str] | None = None) -> str:
    """The text with DSN passwords masked. A known DSN is masked as a whole first: quoted in a message it may hold
    spaces or quotes that would end the patterns' match early."""
    for dsn in known_dsns() if dsns is None else dsns:
        text = text.replace(dsn, mask_dsn(dsn))
    return mask_passwords(text)


def first_line(exc: BaseException) -> str:
    """The error's first line, passwords masked."""
    text = str(exc).strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__)
