"""Text for a terminal from fields other users control (command lines, file names, user names): no
control character reaches the viewer raw, so nobody can forge a line or send an escape sequence."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

__all__ = ["escape", "escape_json_text", "show_argv"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
# C0, DEL and C1 controls (0x9b is CSI on many terminals), and the Unicode line and paragraph separators
# and bidirectional controls that reorder or break what follows them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\\\]")
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _one(match: re.Match[str]) -> str:
    c = match.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``, ``\\u202e``) and
    ``\\`` doubled, so the result is one line that reads back unambiguously."""
    return _UNSAFE.sub(_one, text)


def show_argv(argv: Sequence[str]) -> str:
    """A command line as one line: each argument escaped, and quoted as a shell would need it."""
    return " ".join(shlex.quote(escape(arg)) if arg else "''" for arg in argv)


def escape_json_text(text: str) -> str:
    """JSON text with the controls ``json.dumps(..., ensure_ascii=False)`` leaves raw (DEL, C1, the
    separators and bidirectional controls) written as ``\\uXXXX``: they occur only inside strings, so the
    JSON stays exact."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
