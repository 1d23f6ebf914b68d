"""The HTTP API and the console's pages through the real HTTP stack (uvicorn, the pool, the
console's login) against the real database: tenancy, error statuses, CSRF, sessions."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from itsdangerous import TimestampSigner

from tests.py.console import ConsoleWorld, console_world, sign_in, to_manual_review, tomorrow_at


@pytest.fixture(scope="module")
def world(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    with console_world(db_url, tmp_path_factory.mktemp("console")) as w:
        yield w


def create(
    client: httpx.Client, restaurant_id: int, hour: int = 19, **extra: Any
) -> dict[str, Any]:
    answer = client.post(
        "/api/bookings",
        json={
            "restaurant_id": restaurant_id,
            "party_size": 2,
            "start": tomorrow_at(hour).isoformat(),
            **extra,
        },
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def row(world: ConsoleWorld, booking_id: int) -> tuple[str, int]:
    with psycopg.connect(world.db) as conn:
        found = conn.execute(
            "select state, version from allocator.bookings where id = %s", (booking_id,)
        ).fetchone()
    assert found is not None
    return found[0], found[1]


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


def test_no_credentials_no_access(world: ConsoleWorld) -> None:
    with httpx.Client(base_url=world.base) as anon:
        answer = anon.get("/api/restaurants")
        assert answer.status_code == 401 and error_of(answer)["name"] == "unauthenticated"
        bad = anon.get("/api/restaurants", headers={"Authorization": "Bearer alc_not-a-token"})
        assert bad.status_code == 401 and "unknown" in error_of(bad)["message"]
        basic = anon.get("/api/restaurants", headers={"Authorization": "Basic eDp5"})
        assert basic.status_code == 401
        page = anon.get("/review", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith(
            "/login?next=%2Freview"
        )


def test_a_member_sees_and_changes_only_their_restaurants(world: ConsoleWorld) -> None:
    ann, bob = world.api(world.a), world.api(world.b)
    assert [r["id"] for r in ann.get("/api/restaurants").json()] == [world.a.restaurant_id]
    theirs = create(bob, world.b.restaurant_id)
    before = row(world, theirs["booking_id"])
    bid = theirs["booking_id"]
    for answer in (
        ann.get(f"/api/bookings/{bid}"),
        ann.get(f"/api/internal/bookings/{bid}/attempts"),
        ann.get(f"/api/internal/bookings/{bid}/state"),
        ann.post(f"/api/internal/bookings/{bid}/state", json={"to": "failed", "reason": "x"}),
        ann.post(f"/api/bookings/{bid}/cancel", json={}),
        ann.get(
            f"/api/restaurants/{world.b.restaurant_id}/slots",
            params={
                "party_size": 2,
                "from": tomorrow_at(18).isoformat(),
                "to": tomorrow_at(21).isoformat(),
            },
        ),
        ann.post(
            "/api/bookings",
            json={
                "restaurant_id": world.b.restaurant_id,
                "party_size": 2,
                "start": tomorrow_at(20).isoformat(),
            },
        ),
    ):
        assert answer.status_code == 404, answer.text
        assert error_of(answer)["sqlstate"] == "RA002"
    # The signed-in pages say the same.
    with contextlib.closing(sign_in(world.base, world.a)) as browser:
        assert browser.get(f"/bookings/{bid}").status_code == 404
        assert browser.get(f"/review/{bid}").status_code == 404
        for action in ("requeue", "decline", "force_confirm"):
            form = browser.post(
                f"/review/{bid}",
                data={"action": action, "reason": "x", "plan": "1", "csrf_token": browser.csrf},
            )  # type: ignore[attr-defined]
            assert form.status_code == 303 and form.headers["location"] == f"/review/{bid}"
            assert f"booking {bid} does not exist" in browser.get("/review").text
        for path in (
            "/",
            "/review",
            "/floor",
            f"/floor?restaurant={world.b.restaurant_id}",
            "/health",
            f"/?restaurant={world.b.restaurant_id}",
        ):
            page = browser.get(path)
            assert page.status_code == 200, path
            assert world.b.name not in page.text and "Console B" not in page.text, path
    assert row(world, bid) == before, "another restaurant's booking did not change"


def test_create_find_slots_state_and_cancel(world: ConsoleWorld) -> None:
    ann = world.api(world.a)
    slots = ann.get(
        f"/api/restaurants/{world.a.restaurant_id}/slots",
        params={
            "party_size": 2,
            "from": tomorrow_at(18, days=2).isoformat(),
            "to": tomorrow_at(19, days=2).isoformat(),
        },
    )
    assert slots.status_code == 200 and len(slots.json()) >= 2, slots.text
    booked = create(ann, world.a.restaurant_id, 20, mode="instant", idempotency_key="k-instant")
    assert booked["state"] == "confirmed" and booked["tables"], booked
    again = create(ann, world.a.restaurant_id, 20, mode="instant", idempotency_key="k-instant")
    assert again["booking_id"] == booked["booking_id"], (
        "the idempotency key returns the same booking"
    )
    state = ann.get(f"/api/internal/bookings/{booked['booking_id']}/state").json()
    assert state["state"] == "confirmed" and state["history"][-1]["to_state"] == "confirmed"
    assert state["history"][0]["actor"] == f"staff:{world.a.login}"
    stale = ann.post(
        f"/api/bookings/{booked['booking_id']}/cancel",
        json={"expected_version": state["version"] + 5},
    )
    assert stale.status_code == 409 and error_of(stale)["name"] == "stale_version"
    assert row(world, booked["booking_id"])[0] == "confirmed"
    cancelled = ann.post(
        f"/api/bookings/{booked['booking_id']}/cancel",
        json={"expected_version": state["version"], "reason": "guest called"},
    )
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    twice = ann.post(f"/api/bookings/{booked['booking_id']}/cancel", json={})
    assert twice.status_code == 200 and twice.json()["version"] == cancelled.json()["version"]
    seat = ann.post(
        f"/api/internal/bookings/{booked['booking_id']}/state", json={"to": "seated", "reason": "x"}
    )
    assert seat.status_code == 409 and error_of(seat)["sqlstate"] == "RA005", seat.text


def test_privileged_transitions_go_through_the_state_machine(world: ConsoleWorld) -> None:
    ann = world.api(world.a)
    first = create(ann, world.a.restaurant_id, 18)
    to_manual_review(world.db, first["booking_id"])
    url = f"/api/internal/bookings/{first['booking_id']}/state"
    # Bad requests change nothing.
    for body, status in (
        ({"to": "confirmed", "reason": ""}, 422),
        ({"to": "failed", "reason": "x", "table_ids": [1]}, 422),
        ({"to": "sideways", "reason": "x"}, 422),
        ({"to": "confirmed", "reason": "x", "check_capacity": True}, 422),
        ({"to": "confirmed", "reason": "x"}, 422),  # no hold and no tables
        ({"to": "seated", "reason": "x"}, 409),  # not confirmed
        ({"to": "confirmed", "reason": "x", "table_ids": [2**62]}, 404),
    ):
        answer = ann.post(url, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert row(world, first["booking_id"])[0] == "manual_review"
    requeued = ann.post(url, json={"to": "assignment_pending", "reason": "try again"})
    assert requeued.status_code == 200 and requeued.json()["state"] == "assignment_pending"
    second = create(ann, world.a.restaurant_id, 21)
    to_manual_review(world.db, second["booking_id"])
    with psycopg.connect(world.db) as conn:
        table = conn.execute(
            "select id from allocator.tables where restaurant_id = %s and label = 'G1'",
            (world.a.restaurant_id,),
        ).fetchone()
    assert table is not None
    url = f"/api/internal/bookings/{second['booking_id']}/state"
    confirmed = ann.post(
        url,
        json={
            "to": "confirmed",
            "reason": "regular guest",
            "table_ids": [table[0]],
            "expected_version": row(world, second["booking_id"])[1],
        },
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "confirmed"
    history = ann.get(url).json()["history"]
    assert (
        history[-1]["actor"] == f"staff:{world.a.login}"
        and history[-1]["reason"] == "regular guest"
    )
    # The same table for an overlapping booking is a conflict.
    third = create(ann, world.a.restaurant_id, 21)
    to_manual_review(world.db, third["booking_id"])
    clash = ann.post(
        f"/api/internal/bookings/{third['booking_id']}/state",
        json={"to": "confirmed", "reason": "x", "table_ids": [table[0]]},
    )
    assert clash.status_code == 409 and error_of(clash)["sqlstate"] == "RA003", clash.text
    assert row(world, third["booking_id"])[0] == "manual_review"
    attempts = ann.get(f"/api/internal/bookings/{second['booking_id']}/attempts")
    assert attempts.status_code == 200 and isinstance(attempts.json(), list)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/bookings", b'{"restaurant_id": 1, "party_size":'),
        ("/api/bookings", b"[]"),
        ("/api/bookings", b'{"restaurant_id": 1, "party_size": 2, "start": "2030-01-01T19:00:00"}'),
        (
            "/api/bookings",
            b'{"restaurant_id": 99999999999999999999, "party_size": 2, "start": "2030-01-01T19:00:00Z"}',
        ),
        (
            "/api/bookings",
            b'{"restaurant_id": 1, "party_size": 0, "start": "2030-01-01T19:00:00Z"}',
        ),
        (
            "/api/bookings",
            b'{"restaurant_id": 1, "party_size": 2, "start": "2030-01-01T19:00:00Z", "extra": 1}',
        ),
        ("/api/bookings/0/cancel", b"{}"),
    ],
)
def test_malformed_requests_are_422_with_the_project_code(
    world: ConsoleWorld, path: str, body: bytes
) -> None:
    with world.api(world.a) as ann:
        answer = ann.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    error = error_of(answer)
    assert error["name"] == "invalid_argument" and error["sqlstate"] == "RA001" and error["message"]


def test_unknown_ids_are_404(world: ConsoleWorld) -> None:
    with world.api(world.a) as ann:
        for path in (
            "/api/bookings/9007199254740991",
            "/api/internal/bookings/9007199254740991/attempts",
        ):
            answer = ann.get(path)
            assert answer.status_code == 404 and error_of(answer)["sqlstate"] == "RA002"
        assert ann.get("/api/no-such-endpoint").status_code == 404


def test_session_requests_need_the_csrf_token(world: ConsoleWorld) -> None:
    ann = world.api(world.a)
    booking = create(ann, world.a.restaurant_id, 22)
    to_manual_review(world.db, booking["booking_id"])
    with contextlib.closing(sign_in(world.base, world.a)) as browser:
        url = f"/api/internal/bookings/{booking['booking_id']}/state"
        missing = browser.post(url, json={"to": "failed", "reason": "x"})
        assert missing.status_code == 403 and error_of(missing)["name"] == "csrf"
        wrong = browser.post(
            url, json={"to": "failed", "reason": "x"}, headers={"X-CSRF-Token": "nope"}
        )
        assert wrong.status_code == 403
        form = browser.post(
            f"/review/{booking['booking_id']}", data={"action": "decline", "reason": "x"}
        )
        assert form.status_code == 403
        assert row(world, booking["booking_id"])[0] == "manual_review", "nothing changed"
        ok = browser.post(
            url,
            json={"to": "failed", "reason": "closed kitchen"},
            headers={"X-CSRF-Token": browser.csrf},
        )  # type: ignore[attr-defined]
        assert ok.status_code == 200 and ok.json()["state"] == "failed"
        # The sign-in form is protected too.
        login = httpx.post(
            world.base + "/login", data={"login": world.a.login, "password": world.a.password}
        )
        assert login.status_code == 403


def forged_cookie(secret: str, session: dict[str, Any], signed_at: float) -> str:
    data = base64.b64encode(json.dumps(session).encode())
    signer = TimestampSigner(secret)
    signer.get_timestamp = lambda: int(signed_at)  # type: ignore[method-assign]
    return signer.sign(data).decode()


def test_expired_or_stale_sessions_sign_out(world: ConsoleWorld) -> None:
    with psycopg.connect(world.db) as conn:
        found = conn.execute(
            "select allocator.staff_session(%s) ->> 'password_changed_at'", (world.a.login,)
        ).fetchone()
    assert found is not None
    session = {"login": world.a.login, "pwd_at": found[0], "csrf": "t"}
    fresh = forged_cookie(world.secret, {**session, "since": int(time.time())}, time.time())
    page = httpx.get(world.base + "/review", cookies={"allocator_session": fresh})
    assert page.status_code == 200, "a well-signed, fresh session works"
    for cookie in (
        forged_cookie(world.secret, {**session, "since": int(time.time())}, time.time() - 9 * 3600),
        forged_cookie(world.secret, {**session, "since": int(time.time()) - 9 * 3600}, time.time()),
        forged_cookie(
            world.secret,
            {**session, "pwd_at": "2000-01-01T00:00:00+00:00", "since": int(time.time())},
            time.time(),
        ),
        forged_cookie(
            "another-secret-of-forty-characters-xxxxxxx",
            {**session, "since": int(time.time())},
            time.time(),
        ),
    ):
        page = httpx.get(world.base + "/review", cookies={"allocator_session": cookie})
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        api = httpx.get(world.base + "/api/restaurants", cookies={"allocator_session": cookie})
        assert api.status_code == 401


def test_wrong_password_is_refused_alike_for_unknown_logins(world: ConsoleWorld) -> None:
    for login in (world.a.login, "nobody-at-all"):
        client = httpx.Client(base_url=world.base)
        from tests.py.console import csrf_in

        csrf = csrf_in(client.get("/login").text)
        answer = client.post(
            "/login", data={"login": login, "password": "wrong-password-1", "csrf_token": csrf}
        )
        assert answer.status_code == 401 and "Wrong login or password" in answer.text
        assert client.get("/", follow_redirects=False).status_code == 303


def test_openapi_is_published(world: ConsoleWorld) -> None:
    spec = httpx.get(world.base + "/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/api/internal/bookings/{booking_id}/attempts",
        "/api/internal/bookings/{booking_id}/state",
        "/api/bookings",
        "/api/bookings/{booking_id}/cancel",
        "/api/restaurants/{restaurant_id}/slots",
    } <= paths
    assert not any(p.startswith("/review") or p == "/" for p in paths), "pages are not API"
    docs = httpx.get(world.base + "/docs")
    assert docs.status_code == 200
    for path in paths:
        assert path in docs.text, f"{path} is in the reference at /docs"


def test_security_headers(world: ConsoleWorld) -> None:
    page = httpx.get(world.base + "/login")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_console_refuses_a_login_that_is_not_the_consoles(
    world: ConsoleWorld, tmp_path: Path
) -> None:
    from control.web.db import ConsoleDB, NotConsoleLogin

    with pytest.raises(NotConsoleLogin):
        ConsoleDB.open(world.db)  # a superuser: tenancy would not apply


def test_the_http_statuses_of_the_error_codes_are_documented(world: ConsoleWorld) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    documented = {
        line.split("|")[1].strip(): int(line.split("|")[3])
        for line in text.split("## Over HTTP", 1)[1].split("##", 1)[0].splitlines()
        if line.startswith("| RA")
    }
    with psycopg.connect(world.db) as conn:
        catalog = dict(
            conn.execute("select sqlstate, http_status from allocator.error_codes").fetchall()
        )
    assert documented == catalog


def test_a_nul_character_is_bad_input_not_a_server_error(world: ConsoleWorld) -> None:
    with world.api(world.a) as ann:
        answer = ann.post(
            "/api/bookings",
            json={
                "restaurant_id": world.a.restaurant_id,
                "party_size": 2,
                "start": tomorrow_at(19).isoformat(),
                "guest_email": "a\u0000b@example.org",
            },
        )
    assert answer.status_code == 422 and error_of(answer)["sqlstate"] == "RA001", answer.text


def test_staff_commands(world: ConsoleWorld) -> None:
    import os
    import subprocess
    import sys

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "control.cli", "staff", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "DATABASE_URL": world.db},
        )

    login = f"carla-{world.a.login[-6:]}"
    short = cli("add", login, "-r", str(world.a.restaurant_id), "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "10 to 200 characters" in short.stdout
    added = cli(
        "add",
        login,
        "-r",
        str(world.a.restaurant_id),
        "--name",
        "Carla",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert added.returncode == 0 and f"restaurants {world.a.restaurant_id}" in added.stdout, (
        added.stdout
    )
    token = cli("token", login, "--days", "1").stdout.strip()
    assert token.startswith("alc_")
    with httpx.Client(base_url=world.base, headers={"Authorization": f"Bearer {token}"}) as api:
        assert [r["id"] for r in api.get("/api/restaurants").json()] == [world.a.restaurant_id]
        assert cli("disable", login).returncode == 0
        assert api.get("/api/restaurants").status_code == 401, (
            "a disabled member's token stops at once"
        )
    listed = cli("list").stdout
    assert login in listed and "disabled" in listed
    unknown = cli("disable", "no-such-member")
    assert unknown.returncode == 1 and "RA002" in unknown.stdout


def test_a_superuser_over_tcp_is_refused_not_given_a_passwordless_login(
    world: ConsoleWorld,
) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from control.web.db import NotConsoleLogin, console_conninfo

    info = conninfo_to_dict(world.db)
    with psycopg.connect(world.db) as conn:
        port = conn.info.port
    tcp = make_conninfo(
        "",
        **{
            **{k: str(v) for k, v in info.items() if v is not None},
            "host": "127.0.0.1",
            "port": str(port),
        },
    )
    try:
        psycopg.connect(tcp).close()
    except psycopg.OperationalError:
        pytest.skip("this server does not listen on TCP")
    with pytest.raises(NotConsoleLogin, match="CREATE ROLE"):
        console_conninfo(tcp)


def test_the_floor_marks_bookings_holds_and_blocks(world: ConsoleWorld) -> None:
    ann = world.api(world.a)
    day = tomorrow_at(19, days=3)
    confirmed = ann.post(
        "/api/bookings",
        json={
            "restaurant_id": world.a.restaurant_id,
            "party_size": 2,
            "start": day.isoformat(),
            "mode": "instant",
        },
    ).json()
    held = create(ann, world.a.restaurant_id, 20)
    with psycopg.connect(world.db, autocommit=True) as conn:
        tables = dict(
            conn.execute(
                "select label, id from allocator.tables where restaurant_id = %s",
                (world.a.restaurant_id,),
            ).fetchall()
        )
        conn.execute(
            "select allocator.block_tables(%s, %s, %s, %s, 'window repair')",
            (world.a.restaurant_id, [tables["G1"]], day, day.replace(hour=21)),
        )
    with psycopg.connect(world.db, autocommit=True) as conn:
        hold_day = tomorrow_at(20)
        conn.execute(
            "select allocator.hold_tables(%s, %s, 600)", (held["booking_id"], [tables["T3"]])
        )
    with contextlib.closing(sign_in(world.base, world.a)) as browser:
        page = browser.get(
            f"/floor?restaurant={world.a.restaurant_id}&date={day.date().isoformat()}"
        ).text
        assert (
            f"#{confirmed['booking_id']}" in page
            and "Blocked 19:00\u201321:00: window repair" in page
        )
        assert "Occupancy this week" in page and "%</td>" in page
        page = browser.get(
            f"/floor?restaurant={world.a.restaurant_id}&date={hold_day.date().isoformat()}"
        ).text
        assert f"Hold #{held['booking_id']}" in page
        detail = browser.get(f"/bookings/{held['booking_id']}").text
        assert "hold" in detail and "booking.created" in detail
