"""The engine: a functional core that applies a program to events.

Given a program definition, a member's state, program counters and one event, it
returns a :class:`Decision` (points per currency with their expiry and pending dates,
period-cap usage, budget use, coupon use) and a trace of every rule and why it did or
did not give points. Tier movements, reward eligibility, coupon codes and refund
reversals are pure functions of their inputs too. No I/O, no clock: time is always an
argument, so decisions can be replayed and property-tested, and the API and bulk
import share one code path.
"""

from fidelite.engine.coupon import CouponStatus
from fidelite.engine.decision import CouponUse, Decision, Earning, Outcome, RuleTrace, Usage
from fidelite.engine.evaluator import Evaluator
from fidelite.engine.event import Event, Item
from fidelite.engine.member import MemberState, ProgramState

__all__ = [
    "CouponStatus",
    "CouponUse",
    "Decision",
    "Earning",
    "Evaluator",
    "Event",
    "Item",
    "MemberState",
    "Outcome",
    "ProgramState",
    "RuleTrace",
    "Usage",
]
