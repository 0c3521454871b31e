"""A till checks a reward code over real HTTP (SQLite file and PostgreSQL): a redemption
read by id, by its code (typed in any case, with or without dashes and spaces; a
mistyped code refused naming what is wrong, an unknown one 404) and in the member's
paged list, each saying whether it is active, used or cancelled; ``:use`` marks the
reward taken in store once per key, a used redemption cannot be cancelled and a
cancelled one cannot be used, and every refusal changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from fidelite.api.tables import api_requests
from fidelite.processing.tables import redemptions
from tests.api.conftest import Live


def redeem(c: httpx.Client, member: str, reward: str, key: str) -> dict[str, Any]:
    done = c.post("/v1/redemptions", json={"member": member, "reward": reward},
                  headers={"Idempotency-Key": key})  # fmt: skip
    assert done.status_code == 201, done.text
    return dict(done.json())


def seed(live: Live, member: str, points: int) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": member}).status_code == 201
        credit = c.post(f"/v1/members/{member}/adjustments",
                        json={"points": points, "reason": "seed"},
                        headers={"Idempotency-Key": f"seed-{member}"})  # fmt: skip
        assert credit.status_code == 201, credit.text


def stored(live: Live, rid: int) -> Any:
    with live.db.read() as conn:
        return conn.execute(select(redemptions).where(redemptions.c.id == rid)).one()


def everything(live: Live) -> dict[str, Any]:
    """What a refused call must not change: redemptions, ledger, stored answers."""
    with live.db.read() as conn:
        rows = [tuple(r) for r in conn.execute(select(redemptions).order_by(redemptions.c.id))]
        keys = sorted(r.idem_key for r in conn.execute(select(api_requests)))
    return {"redemptions": rows, "ledger": live.ledger_rows(), "keys": keys}


def available(c: httpx.Client, member: str) -> int:
    return int(c.get(f"/v1/members/{member}/balance").json()["balances"][0]["available"])


def problem(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["code"], body["detail"]


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def test_a_redemption_is_read_by_id_by_code_and_in_the_members_pages(live: Live) -> None:
    with live.client("admin") as c:
        seed(live, "ann", 500)
        made = redeem(c, "ann", "mug", "r1")
        rid, code = made["id"], made["code"]
        row = stored(live, rid)
        expected = {
            "id": rid, "member": "ann", "code": code, "status": "active", "reward": "mug",
            "name": "Mug", "kind": "free_product", "value": None, "sku": "MUG",
            "partner": None, "points": 100, "currency": "points",
            "redeemed_at": iso(row.redeemed_at), "transaction_id": made["transaction_id"],
            "cancelled_at": None, "cancel_transaction_id": None, "used_at": None,
            "used_store": None, "redeemed_by": f"api-key:{live.tokens['admin'].split('_')[1]}",
            "cancelled_by": None, "used_by": None,
        }  # fmt: skip
        got = c.get(f"/v1/redemptions/{rid}")
        assert (got.status_code, got.json()) == (200, expected)
        plain = code.replace("-", "")
        spaced = " ".join(plain[i : i + 3] for i in range(0, len(plain), 3))
        for typed in (code, code.lower(), plain, plain.lower(), spaced, f"  {code}  ",
                      code[:3] + code[3:].replace("-", "")):  # fmt: skip
            found = c.get("/v1/redemptions", params={"code": typed})
            assert (found.status_code, found.json()) == (200, expected), typed

    with live.client("integration") as till:
        ten = redeem(till, "ann", "ten", "r2")
        other = redeem(till, "ann", "ten", "r3")
        first = till.get("/v1/members/ann/redemptions", params={"limit": 2})
        assert first.status_code == 200
        page = first.json()
        assert [r["id"] for r in page["redemptions"]] == [other["id"], ten["id"]]
        assert page["member"] == "ann" and page["next_cursor"] == ten["id"]
        assert page["redemptions"][1]["reward"] == "ten"
        assert page["redemptions"][1]["kind"] == "discount_amount"
        assert page["redemptions"][1]["value"] == "1"
        rest = till.get("/v1/members/ann/redemptions", params={"limit": 2, "before": ten["id"]})
        assert rest.json() == {"member": "ann", "redemptions": [expected], "next_cursor": None}
        everyone = till.get("/v1/members/ann/redemptions").json()
        assert [r["id"] for r in everyone["redemptions"]] == [other["id"], ten["id"], rid]
        assert everyone["next_cursor"] is None

    with live.client("support") as s:  # support cancels: it reads the state it cancels
        assert s.post(f"/v1/redemptions/{rid}:cancel").status_code == 200
        after = s.get(f"/v1/redemptions/{rid}").json()
    row = stored(live, rid)
    with live.db.read() as conn:
        from fidelite.store.tables import LedgerTransaction

        back = conn.execute(
            select(LedgerTransaction.__table__.c.occurred_at).where(
                LedgerTransaction.__table__.c.id == row.cancel_transaction_id
            )
        ).scalar_one()
    assert after == expected | {
        "status": "cancelled", "cancelled_at": iso(back),
        "cancel_transaction_id": row.cancel_transaction_id,
        "cancelled_by": f"api-key:{live.tokens['support'].split('_')[1]}",
    }  # fmt: skip
    with live.client("admin") as c:
        assert c.get("/v1/redemptions", params={"code": code}).json() == after


def test_a_mistyped_code_is_refused_naming_the_problem_and_an_unknown_one_is_404(
    live: Live,
) -> None:
    with live.client("admin") as c:
        seed(live, "ann", 500)
        code = redeem(c, "ann", "ten", "r1")["code"]
        body = code[3:7] + code[8:12] + code[13:17]
        check = code[-1]
        other = "2" if body[0] != "2" else "3"
        typo = f"RW-{other}{code[4:]}"
        swapped = f"RW-{body[1]}{body[0]}{code[5:]}" if body[0] != body[1] else typo
        before = everything(live)
        cases = [
            (typo, f"query.code: {typo!r}: its check symbol does not match: a symbol is "
                   "mistyped or two are swapped"),
            (swapped, f"query.code: {swapped!r}: its check symbol does not match: a symbol "
                      "is mistyped or two are swapped"),
            (code[:-1], f"query.code: {code[:-1]!r} has 12 symbols after RW, a reward code "
                        "has 13 (RW-XXXX-XXXX-XXXX-C): a symbol missing or doubled?"),
            (f"RW-O{code[4:]}", f"query.code: 'RW-O{code[4:]}' holds symbols no reward "
                                "code has: O (read 0?)"),
            ("WELC-7KQ2-M9XD-4HRT-B", "query.code: 'WELC-7KQ2-M9XD-4HRT-B' is not a reward "
                                      "code: reward codes start with RW- (a coupon code is "
                                      "given with the purchase)"),
            ("XY-7KQ2", "query.code: 'XY-7KQ2' is not a reward code: reward codes start "
                        "with RW-"),
        ]  # fmt: skip
        for typed, detail in cases:
            refused = c.get("/v1/redemptions", params={"code": typed})
            assert problem(refused) == (422, "invalid_request", detail), typed
            assert refused.json()["errors"] == [
                {"location": "query.code", "message": detail.removeprefix("query.code: ")}
            ]
        missing = c.get("/v1/redemptions")
        assert (missing.status_code, missing.json()["errors"][0]["location"]) == (
            422, "query.code"
        )  # fmt: skip
        from fidelite.engine.coupon import make_code

        never = make_code("RW", "000000000000")
        unknown = c.get("/v1/redemptions", params={"code": never})
        assert problem(unknown) == (404, "unknown_redemption",
                                    f"no redemption issued code {never}")  # fmt: skip
        assert problem(c.get("/v1/redemptions/999")) == (
            404, "unknown_redemption", "no redemption 999"
        )  # fmt: skip
        nobody = c.get("/v1/members/zed/redemptions")
        assert (nobody.status_code, nobody.json()["code"]) == (404, "unknown_member")
        big = c.get("/v1/members/ann/redemptions", params={"limit": 201})
        cap = "query.limit: Input should be less than or equal to 200"
        assert problem(big) == (422, "invalid_request", cap)
        assert check  # the code read back whole above
    assert everything(live) == before


def test_reads_are_for_the_roles_that_redeem_or_cancel(live: Live) -> None:
    with live.client("admin") as c:
        seed(live, "ann", 500)
        made = redeem(c, "ann", "ten", "r1")
    paths = [f"/v1/redemptions/{made['id']}", f"/v1/redemptions?code={made['code']}",
             "/v1/members/ann/redemptions"]  # fmt: skip
    for role, status in (("admin", 200), ("integration", 200), ("support", 200),
                         ("analyst", 403), ("other_program", 403), (None, 401)):  # fmt: skip
        with live.client(role) as c:
            for path in paths:
                got = c.get(path)
                assert got.status_code == status, (role, path)
                if status != 200:
                    assert made["code"] not in got.text
    with live.client("support") as s:
        refused = s.post(f"/v1/redemptions/{made['id']}:use", headers={"Idempotency-Key": "u"})
        assert problem(refused)[:2] == (403, "forbidden")
    assert stored(live, made["id"]).used_at is None


def test_a_reward_used_in_store_cannot_be_cancelled_nor_used_again(live: Live) -> None:
    with live.client("integration") as till:
        seed(live, "ann", 500)
        made = redeem(till, "ann", "mug", "r1")
        rid = made["id"]
        assert available(till, "ann") == 400
        redeemed_at = stored(live, rid).redeemed_at
        at = redeemed_at + timedelta(minutes=3)
        used = till.post(f"/v1/redemptions/{rid}:use", json={"at": at.isoformat(),
                         "store": "paris-04"}, headers={"Idempotency-Key": "u1"})  # fmt: skip
        assert used.status_code == 200, used.text
        body = used.json()
        assert (body["status"], body["used_at"], body["used_store"], body["replayed"]) == (
            "used", iso(at), "paris-04", False
        )  # fmt: skip
        row = stored(live, rid)
        assert (row.status, row.used_at, row.used_store) == ("active", at, "paris-04")
        read = till.get(f"/v1/redemptions/{rid}").json()
        assert read == {k: v for k, v in body.items() if k != "replayed"}
        assert till.get("/v1/redemptions", params={"code": made["code"]}).json() == read

        before = everything(live)
        again = till.post(f"/v1/redemptions/{rid}:use", json={"at": at.isoformat(),
                          "store": "paris-04"}, headers={"Idempotency-Key": "u1"})  # fmt: skip
        assert (again.status_code, again.headers["idempotent-replayed"], again.json()) == (
            200, "true", body | {"replayed": True}
        )  # fmt: skip
        assert everything(live) == before

        when = iso(at)
        twice = till.post(f"/v1/redemptions/{rid}:use", json={"store": "lyon-01"},
                          headers={"Idempotency-Key": "u2"})  # fmt: skip
        assert problem(twice) == (422, "redemption_already_used", f"cannot use again: "
                                  f"redemption {rid} was used in store 'paris-04' at "
                                  f"{at.isoformat()}")  # fmt: skip
        assert (twice.json()["used_at"], twice.json()["used_store"]) == (
            at.isoformat(), "paris-04"
        )  # fmt: skip
        keyless = till.post(f"/v1/redemptions/{rid}:use")
        assert problem(keyless)[:2] == (422, "redemption_already_used")
        assert when == read["used_at"]

        after_twice = everything(live)
        assert after_twice["redemptions"] == before["redemptions"]
        assert after_twice["ledger"] == before["ledger"]
        cancel = till.post(f"/v1/redemptions/{rid}:cancel", headers={"Idempotency-Key": "c1"})
        why = (f"cannot cancel: redemption {rid} was used in store 'paris-04' at "
               f"{at.isoformat()}: the reward was handed over, so its points are not "
               "returned")  # fmt: skip
        assert problem(cancel) == (422, "redemption_used", why)
        keyless_cancel = till.post(f"/v1/redemptions/{rid}:cancel")
        assert problem(keyless_cancel)[:2] == (422, "redemption_used")
        assert available(till, "ann") == 400
        assert everything(live)["redemptions"] == before["redemptions"]
        assert everything(live)["ledger"] == before["ledger"]
        # used: still out of stock (stock 1), and a redeem sent again says used
        mug = next(r for r in till.get("/v1/rewards").json()["rewards"] if r["id"] == "mug")
        assert mug["stock_left"] == 0
        replay = till.post("/v1/redemptions", json={"member": "ann", "reward": "mug"},
                           headers={"Idempotency-Key": "r1"})  # fmt: skip
        assert (replay.status_code, replay.json()["status"], replay.json()["replayed"]) == (
            201, "used", True
        )  # fmt: skip


def test_a_cancelled_redemption_cannot_be_used_and_bad_uses_change_nothing(live: Live) -> None:
    with live.client("integration") as till:
        seed(live, "ann", 500)
        made = redeem(till, "ann", "ten", "r1")
        rid = made["id"]
        redeemed_at = stored(live, rid).redeemed_at
        before = everything(live)
        sooner = (redeemed_at - timedelta(seconds=1)).isoformat()
        early = till.post(f"/v1/redemptions/{rid}:use", json={"at": sooner})
        assert problem(early) == (422, "invalid_request", f"body.at: {sooner} is before the "
                                  f"redemption ({redeemed_at.isoformat()})")  # fmt: skip
        blank = till.post(f"/v1/redemptions/{rid}:use", json={"store": ""})
        assert (blank.status_code, blank.json()["errors"][0]["location"]) == (422, "body.store")
        extra = till.post(f"/v1/redemptions/{rid}:use", json={"shop": "x"})
        assert (extra.status_code, extra.json()["errors"][0]["location"]) == (422, "body.shop")
        assert problem(till.post("/v1/redemptions/999:use"))[:2] == (404, "unknown_redemption")
        assert everything(live) == before

        assert till.post(f"/v1/redemptions/{rid}:cancel").status_code == 200
        cancelled_at = stored(live, rid)
        with live.db.read() as conn:
            from fidelite.store.tables import LedgerTransaction

            table = LedgerTransaction.__table__
            back = conn.execute(
                select(table.c.occurred_at).where(table.c.id == cancelled_at.cancel_transaction_id)
            ).scalar_one()
        points = available(till, "ann")
        before = everything(live)
        refused = till.post(f"/v1/redemptions/{rid}:use", json={"store": "paris-04"},
                            headers={"Idempotency-Key": "u1"})  # fmt: skip
        why = (f"cannot use redemption {rid}: it was cancelled at {back.isoformat()}: its "
               f"code {made['code']} is void and its points were returned")  # fmt: skip
        assert problem(refused) == (422, "redemption_cancelled", why)
        assert refused.json()["cancelled_at"] == back.isoformat()
        state = till.get(f"/v1/redemptions/{rid}").json()
        assert (state["status"], state["used_at"], state["used_store"]) == ("cancelled", None, None)
        assert available(till, "ann") == points
        after = everything(live)
        assert (after["redemptions"], after["ledger"]) == (before["redemptions"], before["ledger"])
