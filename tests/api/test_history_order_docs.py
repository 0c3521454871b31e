"""The ledger history is listed most recently recorded first (by transaction id), not by
business time: the API's description and the ledger's docstring say so, not "newest
first" (a purchase dated earlier but imported later is listed above)."""

from __future__ import annotations

from fidelite.api.app import create_app
from fidelite.ledger.service import Ledger
from fidelite.program import parse_program
from tests.api.conftest import PROGRAM


def test_ledger_page_description_says_most_recently_recorded_first() -> None:
    doc = create_app("sqlite://", parse_program(PROGRAM)).openapi()
    described = " ".join(
        doc["paths"]["/v1/members/{member_id}/ledger"]["get"]["description"].split()
    )
    assert described.startswith("The member's point movements, most recently recorded first")
    assert "newest first" not in described


def test_ledger_history_docstring_says_most_recently_recorded_first() -> None:
    doc = " ".join((Ledger.history.__doc__ or "").split())
    assert doc.startswith("The member's ledger transactions, most recently recorded first")
    assert "newest first" not in doc
