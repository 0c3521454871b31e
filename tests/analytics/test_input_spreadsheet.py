"""What spreadsheets put around the data of a CSV export: Excel's ``sep=;`` line and
blank lines before the header are skipped (line numbers stay physical)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions


def _write(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _rows(path: Path | str, **options: str) -> list[tuple[object, ...]]:
    loaded = load_transactions(path, LoadOptions(**options))  # type: ignore[arg-type]
    return loaded.connection.execute(
        "SELECT customer_id, amount, order_id FROM transactions ORDER BY customer_id"
    ).fetchall()


def _error(path: Path | str) -> InputError:
    with pytest.raises(InputError) as err:
        load_transactions(path)
    return err.value


@pytest.mark.parametrize("sep_line", ["sep=;", "SEP=;", '"sep=;"'])
def test_excels_sep_line_declares_the_delimiter_and_the_header_follows(
    tmp_path: Path, sep_line: str
) -> None:
    # The header alone would give ',' (four commas, three ';'): the sep= line decides.
    path = _write(
        tmp_path,
        f"{sep_line}\r\ncustomer_id;timestamp;amount;note,with,more,commas\r\n"
        "a;2024-01-05;1,5;x\r\nb;2024-01-06;2,5;y\r\n",
    )
    assert _rows(path) == [("a", 1.5, "#row1"), ("b", 2.5, "#row2")]


def test_an_error_after_a_sep_line_names_the_physical_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "sep=;\ncustomer_id;timestamp;amount\na;2024-01-05;1,5\nb;2024-01-06;x\n"
    )
    err = _error(path)
    assert (err.file, err.row, err.column) == (str(path), 4, "amount")
    assert err.reason == "unparsable amount: 'x'"


def test_a_malformed_line_after_a_sep_line_names_the_physical_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "sep=;\ncustomer_id;timestamp;amount\na;2024-01-05;1;extra\n")
    err = _error(path)
    assert (err.row, err.column) == (3, None)
    assert err.reason.startswith("this line has 4 fields but the header has 3")


def test_leading_blank_lines_are_skipped_and_lines_stay_physical(tmp_path: Path) -> None:
    good = _write(tmp_path, "\r\n  \r\ncustomer_id,timestamp,amount\r\na,2024-01-05,2\r\n", "g.csv")
    assert _rows(good) == [("a", 2.0, "#row1")]
    bad = _write(tmp_path, "\n\ncustomer_id,timestamp,amount\na,2024-01-05,2\nb,,3\n", "b.csv")
    err = _error(bad)
    assert (err.row, err.column, err.reason) == (5, "timestamp", "missing date: empty value")


def test_blank_lines_and_a_sep_line_before_the_header_together(tmp_path: Path) -> None:
    path = _write(tmp_path, "\nsep=|\n\ncustomer_id|timestamp|amount\na|2024-01-05|2\nb|x|3\n")
    err = _error(path)
    assert (err.row, err.column) == (6, "timestamp")


@pytest.mark.parametrize(
    ("text", "row", "reason"),
    [
        ("\r\n\r\n", None, "no header: the file holds only blank lines"),
        ("sep=;\r\n\r\n", 2, "no header after the line 'sep=;'"),
    ],
)
def test_a_file_without_a_header_is_named(
    tmp_path: Path, text: str, row: int | None, reason: str
) -> None:
    path = _write(tmp_path, text)
    err = _error(path)
    assert (err.file, err.row, err.reason) == (str(path), row, reason)


def test_a_glob_whose_files_start_their_header_on_other_lines_is_refused(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "sep=,\ncustomer_id,timestamp,amount\na,2024-01-05,2\n", "a.csv")
    b = _write(tmp_path, "customer_id,timestamp,amount\nb,2024-01-06,3\n", "b.csv")
    err = _error(str(tmp_path / "*.csv"))
    assert (err.file, err.row) == (str(b), 1)
    assert err.reason == (
        f"the header is on line 1 here but on line 2 in {tmp_path / 'a.csv'}: every file of "
        f"'{tmp_path / '*.csv'}' must have as many lines (blank, or 'sep=') before its header"
    )


def test_a_glob_of_files_with_sep_lines_names_a_line_in_its_own_file(tmp_path: Path) -> None:
    _write(tmp_path, "sep=;\ncustomer_id;timestamp;amount\na;2024-01-05;1,5\n", "a.csv")
    b = _write(tmp_path, "sep=;\ncustomer_id;timestamp;amount\nb;2024-01-06;2,5\nc;x;1\n", "b.csv")
    err = _error(str(tmp_path / "*.csv"))
    assert (err.file, err.row, err.column) == (str(b), 4, "timestamp")


@pytest.mark.parametrize(
    ("text", "row"),
    [
        # Excel's artefact: rows of separators below the data, first met by the date check.
        ("customer_id;timestamp;amount\r\na;2024-01-05;1,5\r\n;;\r\n;;\r\n", 3),
        # Between rows, quoted or not, after a sep= line; whichever check meets it first.
        ('sep=,\ncustomer_id,timestamp,amount\na,2024-01-05,1\n"",,""\nb,2024-01-06,2\n', 4),
    ],
)
def test_a_line_of_separators_only_is_named_as_empty(tmp_path: Path, text: str, row: int) -> None:
    path = _write(tmp_path, text)
    err = _error(path)
    assert (err.file, err.row, err.column) == (str(path), row, None)
    assert err.reason == (
        "this line is empty (only separators): delete it (a spreadsheet may leave such "
        "lines below its data)"
    )


def test_a_line_of_separators_only_in_a_glob_names_its_file(tmp_path: Path) -> None:
    _write(tmp_path, "customer_id,timestamp,amount\na,2024-01-05,2\n", "a.csv")
    b = _write(tmp_path, "customer_id,timestamp,amount\nb,2024-01-06,3\n,,\n", "b.csv")
    err = _error(str(tmp_path / "*.csv"))
    assert (err.file, err.row, err.column) == (str(b), 3, None)
    assert err.reason.startswith("this line is empty (only separators): delete it")


def test_a_line_with_one_value_is_no_empty_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "customer_id;timestamp;amount\na;2024-01-05;1,5\n;;2\n")
    err = _error(path)
    assert (err.row, err.column, err.reason) == (3, "timestamp", "missing date: empty value")


@pytest.mark.parametrize(
    ("refund", "purchase"),
    [("oui", "non"), ("Ja", "NEIN"), ("sí", "no"), ("SI", "No"), ("Sim", "NÃO"), ("sim", "nao")],
)
def test_a_refund_flag_reads_yes_and_no_in_other_languages(
    tmp_path: Path, refund: str, purchase: str
) -> None:
    path = _write(
        tmp_path,
        "customer_id,timestamp,amount,refund\n"
        f"a,2024-01-01,10,{purchase}\nb,2024-01-02,5, {refund} \nc,2024-01-03,7,\n",
    )
    loaded = load_transactions(path)
    assert loaded.connection.execute(
        "SELECT customer_id, amount, is_refund FROM transactions ORDER BY customer_id"
    ).fetchall() == [("a", 10.0, False), ("b", -5.0, True), ("c", 7.0, False)]


def test_an_unknown_refund_flag_lists_the_words_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "customer_id,timestamp,amount,refund\na,2024-01-01,10,no\nb,2024-01-02,5,maybe\n"
    )
    err = _error(path)
    assert (err.file, err.row, err.column) == (str(path), 3, "refund")
    assert err.reason == (
        "unknown refund flag (a refund: true, t, 1, yes, y, oui, ja, sí, si, sim; a purchase: "
        "false, f, 0, no, n, non, nein, não, nao or an empty value; in any case): 'maybe'"
    )
