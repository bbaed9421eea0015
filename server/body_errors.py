"""Where in a malformed JSON body the parser stopped, as a field path.

msgspec reports malformed JSON by byte offset only ("JSON is malformed: invalid character
(byte 145)"). Every other error names its field, so this module walks the body up to that
offset and says which value it was in (``min_price``, ``scans[3].min_price``), and whether
the value there is one of the non-standard literals some encoders emit for floats (NaN,
Infinity, -Infinity), which JSON has no way to write.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["explain_malformed"]

_OFFSET: Final = re.compile(r"\(byte (\d+)\)")
_NON_FINITE: Final = (b"NaN", b"Infinity", b"-Infinity", b"+Infinity", b"inf", b"-inf", b"nan")


def explain_malformed(body: bytes, message: str) -> tuple[str | None, str]:
    """(field path or None, message) for msgspec's DecodeError `message` on `body`."""
    match = _OFFSET.search(message)
    if match is None:
        return None, f"the body is not valid JSON ({message}): expected a JSON object"
    offset = int(match[1])
    path = _path_at(body, offset)
    # msgspec stops after a sign, so "-Infinity" is reported at its "I".
    start = offset - 1 if offset > 0 and body[offset - 1 : offset] in (b"-", b"+") else offset
    literal = next((lit for lit in _NON_FINITE if body.startswith(lit, start)), None)
    if literal is not None:
        what = f"{literal.decode()} is not a JSON number: expected a finite number"
        return path, f"{path}: {what}" if path else what
    if path is None:
        return None, f"the body is not valid JSON ({message}): expected a JSON object"
    return path, f"{path}: the body is not valid JSON here ({message}): expected a JSON value"


def _path_at(body: bytes, offset: int) -> str | None:
    """The path of the value being parsed at `offset` (None outside any object member)."""
    # Each frame: [is_object, key or index, expecting_key].
    stack: list[list[object]] = []
    last_string: str | None = None
    i, n = 0, min(offset, len(body))
    while i < n:
        c = body[i]
        if c == 0x22:  # a string: skip to its closing quote, keeping it as a possible key
            j = i + 1
            while j < len(body) and body[j] != 0x22:
                j += 2 if body[j] == 0x5C else 1
            last_string = body[i + 1 : j].decode("utf-8", "replace")
            i = j + 1
            continue
        if c == 0x7B:  # {
            stack.append([True, None, True])
        elif c == 0x5B:  # [
            stack.append([False, 0, False])
        elif c in (0x7D, 0x5D):  # } ]
            if stack:
                stack.pop()
        elif c == 0x3A and stack and stack[-1][0]:  # : after a key
            stack[-1][1] = last_string
            stack[-1][2] = False
        elif c == 0x2C and stack:  # ,
            frame = stack[-1]
            if frame[0]:
                frame[1], frame[2] = None, True
            else:
                frame[1] = int(str(frame[1])) + 1
        i += 1
    parts: list[str] = []
    for is_object, key, _ in stack:
        if is_object:
            if key is None:
                break
            parts.append(f".{key}")
        else:
            parts.append(f"[{key}]")
    return "".join(parts).removeprefix(".") or None
