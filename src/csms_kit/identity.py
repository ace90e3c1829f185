"""The station identity in the connection URL (OCPP-J: the last path segment).

A station connects to ``<endpoint>/<identity>``, the identity percent-encoded. The
rules applied here: the path is the configured prefix plus exactly one segment; the
segment is percent-decoded as UTF-8; the identity is 1 to 48 characters, holds no
``:`` (it is the Basic-auth username; OCPP 2.1 says SHALL NOT), no ``/`` and no
control characters.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

__all__ = ["MAX_IDENTITY_LENGTH", "InvalidIdentity", "identity_from_path", "normalize_prefix"]

MAX_IDENTITY_LENGTH = 48
_BAD_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")


class InvalidIdentity(ValueError):
    """The request path does not carry a valid station identity.

    ``wrong_path`` is true when the path is not under the endpoint at all (answer
    404) rather than carrying a malformed identity (answer 400).
    """

    def __init__(self, reason: str, *, wrong_path: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wrong_path = wrong_path


def normalize_prefix(prefix: str) -> str:
    """``"ocpp"``, ``"/ocpp"`` and ``"/ocpp/"`` all become ``"/ocpp/"``; ``""`` becomes ``"/"``."""
    return "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"


def identity_from_path(path: str, prefix: str = "/") -> str:
    """The station identity in request ``path`` under ``prefix`` (see :func:`normalize_prefix`).

    Raises :class:`InvalidIdentity`. The query string, if any, is ignored.
    """
    path = path.split("?", 1)[0]
    prefix = normalize_prefix(prefix)
    if not path.startswith(prefix):
        raise InvalidIdentity(f"path is not under {prefix}", wrong_path=True)
    segment = path[len(prefix) :]
    if "/" in segment:
        raise InvalidIdentity(f"path must be {prefix}<identity>", wrong_path=True)
    if not segment:
        raise InvalidIdentity("the identity is empty")
    if _BAD_ESCAPE.search(segment):
        raise InvalidIdentity("the identity has a '%' not followed by two hex digits")
    try:
        identity = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise InvalidIdentity("the identity is not valid percent-encoded UTF-8") from None
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise InvalidIdentity(f"the identity is longer than {MAX_IDENTITY_LENGTH} characters")
    if ":" in identity or "/" in identity:
        raise InvalidIdentity("the identity must not contain ':' or '/'")
    if any(unicodedata.category(char).startswith("C") for char in identity):
        raise InvalidIdentity("the identity must not contain control characters")
    return identity
