"""Program definitions: the declarative file in which a business describes its program.

Owns the schema (pydantic models: currencies, earning rules, tiers, rewards, coupon
campaigns, expiry/pending/refund policies, time zone) and loading a YAML file into it
with every problem reported by file, line, column and field. CEL expressions are
compiled here, at load time, so a loaded :class:`ProgramDefinition` is known to be
usable. Nothing here does I/O other than reading the file, and nothing evaluates events
(that is :mod:`fidelite.engine`).
"""

from fidelite.program.definition import ProgramDefinition
from fidelite.program.loader import Problem, ProgramError, load_program, parse_program

__all__ = ["Problem", "ProgramDefinition", "ProgramError", "load_program", "parse_program"]
