"""Shortening long texts (errors, tracebacks) so that what names the culprit
survives: the head (the message) and the tail (the innermost frames, the
"caused by"), with the cut marked. The host uses it too (Python 3.6 syntax)."""

CUT = "\n... [%d characters cut] ...\n"


def shorten(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its head and tail around
    a marker saying how much was cut (two fifths head, the rest tail)."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(CUT % len(text)))
    head = keep * 2 // 5
    tail = keep - head
    return text[:head] + CUT % (len(text) - keep) + (text[len(text) - tail:] if tail else "")
