"""A file that is no text (a workbook, a Parquet file named .csv, an archive, a PDF) is
named for what it is, by every reader of CSV input, not called "UTF-16 text"."""

from __future__ import annotations

import gzip
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fidelite import textfile
from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.metrics.coupons import load_targeting
from fidelite.analytics.subscriptions import load_subscriptions
from tests.cli.support import fidelite

XLSX = "an Excel workbook (.xlsx), not CSV text: in Excel use File > Save As > CSV UTF-8"
XLS = "an Excel 97-2003 workbook (.xls), not CSV text: in Excel use File > Save As > CSV UTF-8"
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
UTF16 = 'UTF-16 text, not UTF-8 (a spreadsheet\'s "Unicode text"); save the file as UTF-8'
CSV = "customer_id,timestamp,amount\na,2024-01-05,10\n"


def _zip(path: Path, first: str, content: bytes = b"<x/>") -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(first), content, compress_type=zipfile.ZIP_STORED)
        z.writestr("other.xml", "<y/>" * 50)


def _xlsx(path: Path) -> None:
    _zip(path, "[Content_Types].xml", b"<Types>" + b"<Default Extension='xml'/>" * 20)


def _openpyxl_order(path: Path) -> None:  # openpyxl writes docProps/app.xml first
    _zip(path, "docProps/app.xml")


def _ods(path: Path) -> None:
    _zip(path, "mimetype", b"application/vnd.oasis.opendocument.spreadsheet")


def _plain_zip(path: Path) -> None:
    _zip(path, "tx.csv", CSV.encode())


def _xls(path: Path) -> None:
    path.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504) + b"\n" + bytes(512))


def _parquet(path: Path) -> None:
    pq.write_table(
        pa.table({"customer_id": ["a"], "timestamp": ["2024-01-05"], "amount": [1]}), path
    )


def _gzip(path: Path) -> None:
    path.write_bytes(gzip.compress(CSV.encode()))


def _pdf(path: Path) -> None:
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")


def _sqlite(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (customer_id TEXT)")
    con.close()


def _binary(path: Path) -> None:  # NUL bytes in no UTF-16 pattern
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00isom\nmore\n")


KINDS: list[tuple[Callable[[Path], None], str]] = [
    (_xlsx, XLSX),
    (_openpyxl_order, XLSX),
    (_ods, ODS),
    (_plain_zip, ZIP),
    (_xls, XLS),
    (_parquet, PARQUET),
    (_gzip, GZIP),
    (_pdf, PDF),
    (_sqlite, SQLITE),
    (_binary, BINARY),
]
IDS = ["xlsx", "xlsx-openpyxl", "ods", "zip", "xls", "parquet", "gzip", "pdf", "sqlite", "bin"]


@pytest.mark.parametrize(("write", "reason"), KINDS, ids=IDS)
def test_transactions_name_a_file_that_is_no_text(
    tmp_path: Path, write: Callable[[Path], None], reason: str
) -> None:
    path = tmp_path / "tx.csv"
    write(path)
    with pytest.raises(InputError) as err:
        load_transactions(path)
    # The whole file is at fault: no line is named.
    assert (str(err.value), err.value.row) == (f"{path}: {reason}", None)


def test_every_reader_names_a_workbook(tmp_path: Path) -> None:
    """Subscriptions, survey answers, a segments file and a coupons targeting file are
    read by the same code, and say the same."""
    book = tmp_path / "book.xlsx"
    _xlsx(book)
    for load in (load_subscriptions, load_answers):
        with pytest.raises(InputError) as err:
            load(book)
        assert str(err.value) == f"{book}: {XLSX}"
    tx = tmp_path / "tx.csv"
    tx.write_text(CSV, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_transactions(tx, LoadOptions(segments_file=book))
    assert str(err.value) == f"{book}: {XLSX}"
    with pytest.raises(InputError) as err:
        load_targeting(book)
    assert str(err.value) == f"{book}: cannot read the file: {XLSX}"


def test_a_glob_names_the_file_that_is_a_workbook(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(CSV, encoding="utf-8")
    _parquet(tmp_path / "b.csv")
    with pytest.raises(InputError) as err:
        load_transactions(str(tmp_path / "*.csv"))
    assert str(err.value) == f"{tmp_path / 'b.csv'}: {PARQUET}"


def test_the_cli_names_a_workbook_and_a_parquet_file(tmp_path: Path) -> None:
    """The QA repro: both were "line 1: UTF-16 text"."""
    book, data = tmp_path / "real2.xlsx", tmp_path / "pq_as.csv"
    _xlsx(book)
    _parquet(data)
    for path, reason in ((book, XLSX), (data, PARQUET)):
        proc = fidelite("metrics", "repeat-rate", "-i", path, ok=False)
        assert (proc.returncode, proc.stdout) == (1, "")
        assert proc.stderr.strip() == f"error [bad_input] {path}: {reason}"


def test_utf16_is_still_named_as_such(tmp_path: Path) -> None:
    """UTF-16 with a byte order mark, or without one in either byte order."""
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes("customer_id,timestamp,amount,ville\né,2024-01-05,1,x\n".encode(encoding))
        with pytest.raises(InputError) as err:
            load_transactions(path)
        assert str(err.value) == f"{path}, line 1: {UTF16}", encoding


def test_what_the_first_bytes_say() -> None:
    assert textfile.is_utf16("customer_id,amount\n".encode("utf-16-le")[:-1])
    assert textfile.is_utf16("customer_id,amount\n".encode("utf-16-be"))
    assert not textfile.is_utf16(b"\x00\x00\x00\x18ftypmp42")  # NULs at both parities
    assert not textfile.is_utf16(b"customer_id,amount\n")
    assert textfile.binary_kind(b"customer_id,amount\nPK\x03\x04") is None
    assert textfile.binary_kind(b"PAR1,amount\n1,2\n") is None  # a column named PAR1: text
    assert textfile.binary_kind(b"PAR1\x15\x04") == PARQUET
    assert textfile.binary_kind(b"a,b\n\x00\x01") is None  # a NUL after the first line: not here
    assert textfile.binary_kind(b"") is None


def test_first_not_utf8_names_the_kind(tmp_path: Path) -> None:
    """What the importer reads (:mod:`fidelite.processing.rows` checks every file so)."""
    path = tmp_path / "crm.csv"
    _gzip(path)
    found = textfile.first_not_utf8(path)
    assert found is not None
    assert (found.line, found.reason) == (1, GZIP)
