"""docs/webhooks.md: the receiver's verification snippet accepts real deliveries."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker
from fidelite.webhooks import subscriptions as subs
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import processor, purchase

DOC = Path(__file__).parents[2] / "docs" / "webhooks.md"


def snippet() -> Callable[..., bool]:
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    scope: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), scope)
    verify: Callable[..., bool] = scope["verify_fidelite"]
    return verify


def test_the_documented_snippet_verifies_real_deliveries(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'doc.db'}")
    db.upgrade()
    processor(db)
    sub = subs.add(db, "shop", receiver.url, ["*"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    worker = DeliveryWorker(db, allow_private=True)
    assert worker.run_once().delivered == 2
    worker.close()
    verify = snippet()
    for request in receiver.requests:
        header = request.headers["Fidelite-Signature"]
        assert verify(sub.secret, request.body, header)
        assert not verify(sub.secret, request.body + b" ", header)
        assert not verify("whsec_wrong_secret_123", request.body, header)
        assert not verify(sub.secret, request.body, header, tolerance=-1)
    db.dispose()
