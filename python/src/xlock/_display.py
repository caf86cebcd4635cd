"""Text for a terminal from fields other users control (command lines, file names, user names): no
control character reaches the viewer raw, so nobody can forge a line or send an escape sequence."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["escape", "escape_json_text", "show_argv"]

# DEL and C1 controls (0x9b is CSI on many terminals), and the Unicode line and paragraph separators and
# bidirectional controls that reorder or break what follows them: what json.dumps(ensure_ascii=False)
# leaves raw. Translation tables rather than regular expressions: no re to import and compile at start.
_UNSAFE_IN_JSON = (
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escaped(code: int) -> str:
    named = _NAMED.get(chr(code))
    if named is not None:
        return named
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# ... and C0 controls and the backslash itself, for plain text
_ESCAPES = {code: _escaped(code) for code in (*range(0x20), *_UNSAFE_IN_JSON, ord("\\"))}
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _UNSAFE_IN_JSON}


def escape(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``, ``\\u202e``) and
    ``\\`` doubled, so the result is one line that reads back unambiguously."""
    return text.translate(_ESCAPES)


def show_argv(argv: Sequence[str]) -> str:
    """A command line as one line: each argument escaped, and quoted as a shell would need it."""
    import shlex  # here: only `xlock status` shows command lines

    return " ".join(shlex.quote(escape(arg)) if arg else "''" for arg in argv)


def escape_json_text(text: str) -> str:
    """JSON text with the controls ``json.dumps(..., ensure_ascii=False)`` leaves raw (DEL, C1, the
    separators and bidirectional controls) written as ``\\uXXXX``: they occur only inside strings, so the
    JSON stays exact."""
    return text.translate(_JSON_ESCAPES)
