"""Point currencies: what members earn, and what a point is worth in money."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from fidelite.program.model import Identifier, ProgramModel

_NO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_NO_DECIMALS.split(), 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}
"""ISO 4217 minor units (decimals of an amount) of the moneys not counted in cents; every
other code has 2. Python's standard library has no such table."""


def minor_unit(money: str) -> int:
    """The decimals an amount in ``money`` (an ISO 4217 code) is shown with: 0 for yen,
    3 for Kuwaiti dinars (fils), 2 (cents) for the codes :data:`MINOR_UNITS` does not
    list."""
    return MINOR_UNITS.get(money.upper(), 2)


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

    @property
    def money_places(self) -> int:
        """The decimals an amount of ``money`` is shown with (its ISO 4217 minor unit)."""
        return minor_unit(self.money)
