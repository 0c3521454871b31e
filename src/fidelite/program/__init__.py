"""Program definitions: the declarative file in which a business describes its program.

Owns the schema (pydantic models: currencies, earning rules, tiers, rewards, coupon
campaigns, expiry/pending/refund policies, time zone) and loading a YAML file into it
with every problem reported by file, line, column and field, all in one run. CEL
expressions are compiled and type-checked here, at load time (:mod:`.probe`), and
checks between fields and sections run even on a file that fails elsewhere
(:mod:`.consistency`), so a loaded :class:`ProgramDefinition` is known to be usable.
Nothing here does I/O other than reading the file, and nothing applies a program to
events (that is :mod:`fidelite.engine`; the load-time type check only tries each
expression on sample values).
"""

from fidelite.program.definition import ProgramDefinition
from fidelite.program.loader import Problem, ProgramError, load_program, parse_program

__all__ = ["Problem", "ProgramDefinition", "ProgramError", "load_program", "parse_program"]
