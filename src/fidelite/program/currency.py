"""Point currencies: what members earn, and what a point is worth in money."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from fidelite.program.model import Identifier, ProgramModel


class Currency(ProgramModel):
    """A point currency.

    ``value`` is the money one point is worth (in ``money``), used for liability
    reporting; it never changes how many points are given.
    """

    id: Identifier
    name: str
    unit: str = "pt"
    value: Decimal = Field(ge=0, description="money value of one point")
    money: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
