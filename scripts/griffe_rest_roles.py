"""A griffe extension for the API reference: our docstrings' reST markup as Markdown.

The docstrings are written for reading in an editor and with ``help()``, in the reST
habits of the Python world (``:class:`~pkg.Name```, ``::`` before a code block).
mkdocstrings renders docstrings as Markdown, where those would show raw; this turns
them into code spans and plain colons as griffe loads each object.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# :role:`~dotted.Name`, :role:`dotted.Name`, :role:`text <dotted.Name>`
_ROLE = re.compile(r":(?:class|meth|func|mod|attr|exc|data|obj|const):`(?P<text>[^`]+)`")
_LITERAL_BLOCK = re.compile(r"::$", re.MULTILINE)


def _role_as_code(match: re.Match[str]) -> str:
    text = match["text"]
    if text.endswith(">") and "<" in text:
        text = text[: text.index("<")].rstrip()
    elif text.startswith("~"):
        text = text.rsplit(".", 1)[-1]
    return f"`{text}`"


def rest_to_markdown(docstring: str) -> str:
    """``docstring`` with reST roles as code spans and ``::`` as ``:``."""
    return _LITERAL_BLOCK.sub(":", _ROLE.sub(_role_as_code, docstring))


class RestRoles(griffe.Extension):
    """Rewrites each loaded object's docstring (see :func:`rest_to_markdown`)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rest_to_markdown(obj.docstring.value)
