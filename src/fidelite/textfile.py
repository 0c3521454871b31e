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

A file that is no text at all is named for what it is, from its first bytes
(:func:`binary_kind`): an Excel or OpenDocument workbook, a Parquet file, a gzip
archive, a PDF, or, holding NUL bytes in no UTF-16 pattern, "a binary file". Such a
file is what a user picks by mistake (the .xlsx beside the .csv export, a Parquet file
named .csv), and "UTF-16" or "not UTF-8" would send them to re-save it as UTF-8.
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
_HEAD = 1 << 16  # bytes of a line before the header checked, and of a file to know its kind
UTF16 = f'UTF-16 text, not UTF-8 (a spreadsheet\'s "Unicode text"); {ADVICE}'
_EXCEL = "in Excel use File > Save As > CSV UTF-8"
XLSX = f"an Excel workbook (.xlsx), not CSV text: {_EXCEL}"
XLS = f"an Excel 97-2003 workbook (.xls), not CSV text: {_EXCEL}"
ODS = (
    "an OpenDocument spreadsheet (.ods), not CSV text: in LibreOffice use File > Save As > "
    "Text CSV, character set UTF-8"
)
ZIP = "a zip archive, not CSV text: extract the CSV file from it"
PARQUET = "a Parquet file, not CSV text: rename it to end in .parquet to have it read as Parquet"
GZIP = "a gzip-compressed file, not CSV text: decompress it first (gunzip)"
PDF = "a PDF document, not CSV text: export the data as CSV (UTF-8) from where it comes from"
SQLITE = "an SQLite database, not CSV text: export the data as CSV (UTF-8)"
BINARY = "a binary file, not CSV text: give a CSV file saved as UTF-8"
# How each kind of file begins (its "magic" bytes); a zip archive is told apart further
# by its first entry (:func:`_zip_kind`).
_MAGIC = (
    (bytes.fromhex("d0cf11e0a1b11ae1"), XLS),  # OLE2 compound file: .xls
    (b"\x1f\x8b", GZIP),
    (b"%PDF-", PDF),
    (b"SQLite format 3\x00", SQLITE),
)
_ZIP = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")  # an entry, an empty archive, spanned
# The first entry of an Office Open XML package (an .xlsx workbook), as writers order them.
_OOXML = ("[Content_Types].xml", "_rels/", "docProps/", "xl/", "customXml/")
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
    too. Raises :class:`NoHeader` when no header follows, and when the file is no
    text at all (:func:`binary_kind`; the fault is then the whole file's).

    Invariant: the header is physical line ``skip + 1``; both the importer and
    analytics read a file's layout from here, so they agree on where its header is."""
    declared: str | None = None
    with path.open("rb") as raw:
        if (kind := binary_kind(raw.read(_HEAD))) is not None:
            raise NoHeader(kind, None)
        raw.seek(0)
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
    whole: str | None = None

    @property
    def binary(self) -> bool:
        """The file is no text at all (a workbook, Parquet, ...): no line is at fault."""
        return self.whole is not None and self.whole != UTF16

    @property
    def reason(self) -> str:
        """What is wrong and what to do, without the file's name."""
        if self.whole is not None:
            return self.whole
        return f"not UTF-8 text (byte 0x{self.byte:02x}); {ADVICE}"


def is_utf16(first_line: bytes) -> bool:
    """``first_line`` (a file's first line, as bytes) is UTF-16: a UTF-16 byte order
    mark, or NUL bytes at every other position (UTF-16 writes each ASCII character as
    the character and a NUL, in either order), at least as many as half the line's
    characters, and none at the other positions. A NUL anywhere else is no UTF-16
    pattern: the file is binary (:func:`binary_kind`)."""
    if first_line.startswith(_UTF16_MARKS):
        return True
    pairs = first_line[: len(first_line) // 2 * 2]  # without the half of a "\n\0"
    for high, low in ((pairs[1::2], pairs[0::2]), (pairs[0::2], pairs[1::2])):
        if high and b"\x00" not in low and 2 * high.count(0) >= len(high):
            return True
    return False


def binary_kind(start: bytes) -> str | None:
    """Why a file beginning with ``start`` (its first bytes, :data:`_HEAD` of them
    or the whole file) is no CSV text, ``None`` when it may be text: a format known by
    its first bytes (:data:`_MAGIC`, zip, Parquet), else a NUL byte on the first line
    other than UTF-16's (:func:`is_utf16`: that file is text, in the wrong encoding).
    A CSV file never begins with these bytes: each holds a control character, but
    ``PAR1``, which is followed by one in a Parquet file."""
    if start.startswith(_ZIP):
        return _zip_kind(start)
    if start.startswith(b"PAR1") and (len(start) == 4 or _is_control(start[4])):
        return PARQUET
    for magic, reason in _MAGIC:
        if start.startswith(magic):
            return reason
    first = start.split(b"\n", 1)[0]
    if b"\x00" in first and not is_utf16(first):
        return BINARY
    return None


def _is_control(byte: int) -> bool:
    return byte < 0x20 and byte not in b"\t\r\n"


def _zip_kind(start: bytes) -> str:
    """A zip archive's kind from its first entry's name (a local file header: the
    name's length at offset 26, the name at 30): an .xlsx workbook's parts, or an .ods
    one's ``mimetype`` entry, stored first and uncompressed as the format requires."""
    length = int.from_bytes(start[26:28], "little")
    name = start[30 : 30 + length].decode("utf-8", errors="replace")
    if name == "mimetype" and b"opendocument.spreadsheet" in start[30 + length : 30 + length + 80]:
        return ODS
    if name.startswith(_OOXML):
        return XLSX
    return ZIP


def line_not_utf8(line: bytes, number: int, *, cut: bool = False) -> NotUtf8 | None:
    """Why line ``number`` (its bytes) is not UTF-8 text, or ``None`` when it is.

    ``cut``: ``line`` is only the line's start, so a character cut off at its end is no
    error (a header read in a bounded block)."""
    if number == 1 and (whole := _not_text(line)) is not None:
        return NotUtf8(1, line[0], 0, whole)
    decoder = codecs.getincrementaldecoder(ENCODING if number == 1 else "utf-8")()
    try:
        decoder.decode(line, final=not cut)
    except UnicodeDecodeError as exc:
        # exc.object is what was decoded: the line without its byte order mark.
        return NotUtf8(number, exc.object[exc.start], exc.start + len(line) - len(exc.object))
    return None


def _not_text(start: bytes) -> str | None:
    """Why a file beginning with ``start`` is no UTF-8 text as a whole: not text at all
    (:func:`binary_kind`) or UTF-16 text; ``None`` when it may be UTF-8."""
    if (kind := binary_kind(start)) is not None:
        return kind
    return UTF16 if is_utf16(start.split(b"\n", 1)[0]) else None


def first_not_utf8(path: Path) -> NotUtf8 | None:
    """Where the file at ``path`` stops being UTF-8 text, or ``None`` when it is all
    UTF-8. The file is decoded in blocks (fast); only a file that fails is read again
    line by line to find where. Raises ``OSError`` when the file cannot be read."""
    decoder = codecs.getincrementaldecoder(ENCODING)()
    with path.open("rb") as handle:
        start = handle.read(_HEAD)
        if (whole := _not_text(start)) is not None:
            return NotUtf8(1, start[0], 0, whole)
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
