"""Database URLs as they may be shown: without the password.

Every message, report or JSON answer that names a program database goes through
:func:`display_url`, so a PostgreSQL password given on the command line or in
``FIDELITE_DB`` never reaches a terminal, a log or a file; :func:`scrub` takes the URL
out of an error's text too.
"""

from __future__ import annotations

import re

# scheme://user:password@ — the user ends at ':' or '/', the password at '@' (as
# SQLAlchemy reads a URL); a SQLite path (scheme:///path) never matches.
_USERINFO = re.compile(r"^(?P<scheme>[\w+.-]+://)(?P<user>[^:/@]*):(?P<password>[^@]*)@")
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.IGNORECASE)


def display_url(url: str) -> str:
    """``url`` without its password: ``postgresql://app:s3cret@db/shop`` gives
    ``postgresql://app@db/shop``; a ``password=`` query parameter becomes ``***``.
    Anything else (a SQLite path, a URL without a password) is returned unchanged."""
    shown = _USERINFO.sub(r"\g<scheme>\g<user>@", url, count=1)
    return _QUERY_PASSWORD.sub(r"\g<key>***", shown)


def scrub(message: str, *urls: str) -> str:
    """``message`` (a driver's error, say) with each of ``urls`` written in it shown as
    :func:`display_url` shows it."""
    for url in urls:
        if url:
            message = message.replace(url, display_url(url))
    return message
