"""Base class for every program-definition model: strict about unknown keys.

A typo in a program file (``multiplyer:``) must be an error naming the line, not a
silently ignored key that changes how points are given.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints


class ProgramModel(BaseModel):
    """Frozen, no extra keys; expressions are compiled objects, not strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER.pattern, max_length=64)]
"""A lower-case name used to refer to a currency, rule, tier, reward or campaign."""
