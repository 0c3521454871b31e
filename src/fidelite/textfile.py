"""Text files users hand us (CSV exports): UTF-8, a leading byte order mark allowed.

Both readers of such files use this module, so a file in another encoding is refused
with the same words whichever command reads it: the bulk importer
(:mod:`fidelite.processing.rows`) and analytics (:mod:`fidelite.analytics.csvfile`).
It imports nothing from fidelite, so any layer may import it. It also decides a CSV
file's separator from its header (:func:`header_delimiter`), so a ``;``-separated
export reads the same in the importer as in analytics, and finds the header behind
Excel's ``sep=;`` line and blank lines (:func:`lines_before_header`).

Why name the line and the byte: a spreadsheet saved as "CSV" in a Western European
locale writes Latin-1 (``é`` is the byte 0xE9), and one saved as "Unicode text" writes
UTF-16 (a byte order mark, then a NUL byte after every ASCII letter). Either reads as
garbage or fails deep inside a CSV parser; the user needs to know which line to look at
and that saving the file as UTF-8 is the fix.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

ENCODING = "utf-8-sig"  # UTF-8, skipping a byte order mark (Excel's "CSV UTF-8")
ADVICE = "save the file as UTF-8"
_BLOCK = 1 << 20
_UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_HEAD = 1 << 16  # bytes of a line before the header checked for its encoding
# Excel's separator hint, the first line of a CSV it writes when asked to: ``sep=;``.
_SEP_LINE = re.compile(r'"?sep=(.)"?', re.IGNORECASE)


DELIMITERS = (",", ";", "\t", "|")
"""The separators a CSV export uses: ``,``; ``;`` (Excel in French, German and other
locales whose decimal mark is a comma); TAB; ``|``."""


def header_delimiter(line: str) -> str:
    """The separator of a CSV file whose header is ``line``: the most frequent of
    :data:`DELIMITERS` in it (the first of them on a tie), ``,`` when none is there (a
    one-column header). Decided on the header alone: column names hold no separator,
    while data cells may (a JSON cell, a decimal comma)."""
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def delimiter_name(delimiter: str) -> str:
    """How a message names ``delimiter``: ``TAB`` or the character quoted."""
    return "TAB" if delimiter == "\t" else f"'{delimiter}'"


class NoHeader(ValueError):
    """The file has no header (only blank lines, or nothing after a ``sep=`` line), or
    a line up to the header is not UTF-8 text; ``line`` is the physical line at fault,
    ``None`` when the fault is the whole file's."""

    def __init__(self, reason: str, line: int | None = 1) -> None:
        super().__init__(reason)
        self.line = line


def lines_before_header(path: Path) -> tuple[str | None, int]:
    """The delimiter a ``sep=X`` line declares (``None`` without one) and the number of
    lines before the header: blank lines, and the ``sep=`` line when it is the first
    line that is not blank (Excel writes it when asked to name the separator, and hides
    it when it opens the file). Each line read is checked to be UTF-8 text, the header
    too. Raises :class:`NoHeader` when no header follows.

    Invariant: the header is physical line ``skip + 1``; both the importer and
    analytics read a file's layout from here, so they agree on where its header is."""
    declared: str | None = None
    with path.open("rb") as raw:
        number = 0
        while line := raw.readline(_HEAD):
            number += 1
            bad = line_not_utf8(line, number, cut=True)
            if bad is not None:
                raise NoHeader(bad.reason, number)
            text = line.decode(ENCODING if number == 1 else "utf-8", errors="replace").strip()
            if not text:
                continue
            sep = _SEP_LINE.fullmatch(text) if declared is None else None
            if sep is None:
                return declared, number - 1
            declared = sep.group(1)
    if declared is not None:
        raise NoHeader(f"no header after the line 'sep={declared}'", number)
    raise NoHeader("no header: the file holds only blank lines", None)


@dataclass(frozen=True)
class NotUtf8:
    """Where a file stops being UTF-8 text: its line (1-based), the first byte that is
    not UTF-8 there and that byte's position in the line (0-based), and whether the
    file is UTF-16 text altogether."""

    line: int
    byte: int
    offset: int
    utf16: bool = False

    @property
    def reason(self) -> str:
        """What is wrong and what to do, without the file's name."""
        if self.utf16:
            return f'UTF-16 text, not UTF-8 (a spreadsheet\'s "Unicode text"); {ADVICE}'
        return f"not UTF-8 text (byte 0x{self.byte:02x}); {ADVICE}"


def is_utf16(first_line: bytes) -> bool:
    """``first_line`` (a file's first line, as bytes) is UTF-16: a UTF-16 byte order
    mark, or a NUL byte, which a text header never holds and UTF-16 puts after every
    ASCII character."""
    return first_line.startswith(_UTF16_MARKS) or b"\x00" in first_line


def line_not_utf8(line: bytes, number: int, *, cut: bool = False) -> NotUtf8 | None:
    """Why line ``number`` (its bytes) is not UTF-8 text, or ``None`` when it is.

    ``cut``: ``line`` is only the line's start, so a character cut off at its end is no
    error (a header read in a bounded block)."""
    if number == 1 and is_utf16(line):
        return NotUtf8(1, line[0], 0, utf16=True)
    decoder = codecs.getincrementaldecoder(ENCODING if number == 1 else "utf-8")()
    try:
        decoder.decode(line, final=not cut)
    except UnicodeDecodeError as exc:
        # exc.object is what was decoded: the line without its byte order mark.
        return NotUtf8(number, exc.object[exc.start], exc.start + len(line) - len(exc.object))
    return None


def first_not_utf8(path: Path) -> NotUtf8 | None:
    """Where the file at ``path`` stops being UTF-8 text, or ``None`` when it is all
    UTF-8. The file is decoded in blocks (fast); only a file that fails is read again
    line by line to find where. Raises ``OSError`` when the file cannot be read."""
    decoder = codecs.getincrementaldecoder(ENCODING)()
    with path.open("rb") as handle:
        first = handle.readline(_BLOCK)
        if is_utf16(first):
            return NotUtf8(1, first[0], 0, utf16=True)
        handle.seek(0)
        try:
            while block := handle.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            handle.seek(0)
            last = NotUtf8(1, 0, 0)
            for number, line in enumerate(handle, start=1):
                if (bad := line_not_utf8(line, number)) is not None:
                    return bad
                last = NotUtf8(number, 0, len(line))
            return last  # not reached: the line holding the bad byte fails on its own
    return None
