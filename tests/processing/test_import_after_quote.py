"""Characters after a cell's closing quote make that row alone unreadable, never the
file: the record ends with its line, so the rows after it keep their bounds and their
numbers. White space there is read as it always was (the cell trimmed later); only a
quote never closed refuses the whole file (tests/cli/test_import_unclosed_quote.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.processing.rows import ImportFileError, count_rows, read_rows

COLUMNS = (["event_id"], ["store", "amount"])
ADVICE = 'a quote inside a quoted value must be doubled ("")'


def rows(path: Path) -> list[tuple[int, dict[str, object], str | None]]:
    return [(row.number, row.cells, row.problem) for row in read_rows(path, COLUMNS)]


def test_a_space_after_a_closing_quote_is_read_leniently(tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text('event_id,store,amount\nr1,"paris, 1" ,10\nr2,S1,"10" \n', encoding="utf-8")
    assert count_rows(file, COLUMNS) == 2
    assert rows(file) == [
        (2, {"event_id": "r1", "store": "paris, 1 ", "amount": "10"}, None),
        (3, {"event_id": "r2", "store": "S1", "amount": "10 "}, None),
    ]


def test_other_characters_reject_the_row_and_the_next_rows_keep_their_numbers(
    tmp_path: Path,
) -> None:
    file = tmp_path / "events.csv"
    file.write_text(
        "event_id;store;amount\r\n"
        'r1;"Bar"s;10\r\n'
        'r2;"Main\r\nst";11\r\n'
        'r3;"multi\nline"x;12\r\n'
        "\r\n"
        'r4;"a""b";13\r\n',
        encoding="utf-8",
    )
    assert count_rows(file, COLUMNS) == 4
    assert rows(file) == [
        (2, {"event_id": "r1", "store": "Bars", "amount": "10"},
         f"(row): characters 's' after the closing quote of cell 2 (store): {ADVICE}"),
        (3, {"event_id": "r2", "store": "Main\r\nst", "amount": "11"}, None),
        (4, {"event_id": "r3", "store": "multi\nlinex", "amount": "12"},
         f"(row): characters 'x' after the closing quote of cell 2 (store): {ADVICE}"),
        (6, {"event_id": "r4", "store": 'a"b', "amount": "13"}, None),
    ]  # fmt: skip


def test_characters_after_a_quote_in_the_header_refuse_the_file(tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text('"event_id"x,store\nr1,S1\n', encoding="utf-8")
    message = (f"{file}: line 1: the header has characters 'x' after the closing quote of "
               f"cell 1: {ADVICE}")  # fmt: skip
    with pytest.raises(ImportFileError) as raised:
        list(read_rows(file, COLUMNS))
    assert str(raised.value) == message


def test_a_quote_never_closed_after_a_bad_row_still_refuses_the_file(tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text('event_id,store\nr1,"Bar"s\nr2,"Main\nr3,S1\n', encoding="utf-8")
    for read in (lambda: count_rows(file, COLUMNS), lambda: list(read_rows(file, COLUMNS))):
        with pytest.raises(ImportFileError, match="line 3: badly quoted record: a quote opened"):
            read()


def test_a_quote_never_closed_in_a_large_file_refuses_it(tmp_path: Path) -> None:
    """Past the csv reader's default cell size limit (131,072 characters): read through."""
    file = tmp_path / "events.csv"
    file.write_text('event_id,store\nr1,"Main\n' + "r2,S1\n" * 40_000, encoding="utf-8")
    with pytest.raises(ImportFileError, match="line 2: badly quoted record: a quote opened"):
        list(read_rows(file, COLUMNS))
