"""The staff console and the HTTP API: one ASGI application over the console's pool.

Business rules stay in SQL: every change calls an RPC, every read runs under row level
security, acting for the signed-in member (control/web/db.py). This module maps requests to
those calls, errors to HTTP statuses, and rows to pages.
"""

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import psycopg
from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from control.web import auth
from control.web.board import STATES, board_columns, floor_grid, heatmap, level, state_meta
from control.web.db import ConsoleDB, Cursor

HERE = Path(__file__).parent
log = logging.getLogger("allocator.console")
BIGINT = 2**63 - 1
BookingId = Annotated[int, PathParam(ge=1, le=BIGINT, description="Booking id")]
RestaurantId = Annotated[int, PathParam(ge=1, le=BIGINT, description="Restaurant id")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
TableIds = Annotated[
    list[Annotated[int, Field(ge=1, le=BIGINT)]], Field(min_length=1, max_length=6)
]
# How often an open page's stream looks for changes when nothing woke it earlier.
STREAM_TICK_SECONDS = 0.4
STREAM_HEARTBEAT_SECONDS = 15.0
STREAM_RECHECK_SECONDS = 60.0
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; connect-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class ApiError(Exception):
    """An error answered as JSON (API) or as a page (console), with the project's code."""

    def __init__(
        self,
        status: int,
        name: str,
        message: str,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.name, self.message = status, name, message
        self.sqlstate, self.detail, self.hint = sqlstate, detail, hint

    def body(self) -> dict[str, Any]:
        error = {"name": self.name, "sqlstate": self.sqlstate, "message": self.message}
        if self.detail:
            error["detail"] = self.detail
        if self.hint:
            error["hint"] = self.hint
        return {"error": error}


# SQLSTATEs outside the project's RA class, by prefix (longest first).
_OTHER_STATUSES = (
    ("23505", 409, "conflict"),
    ("23P01", 409, "conflict"),
    ("42501", 403, "not_permitted"),
    ("55P03", 503, "busy"),
    ("57014", 503, "busy"),
    ("40", 503, "busy"),
    ("22", 422, "invalid_argument"),
    ("23", 422, "invalid_argument"),
)


def db_error(db: ConsoleDB, err: psycopg.Error) -> ApiError:
    """The HTTP form of a database error: the project's codes by allocator.error_codes."""
    state = err.sqlstate or ""
    diag = err.diag
    if not state and isinstance(err, psycopg.DataError):
        # Refused before it reached the server, e.g. a NUL character in a text value.
        return ApiError(422, "invalid_argument", str(err), "RA001")
    if state in db.http_status:
        name = db.error_names.get(state, "error")
        return ApiError(
            db.http_status[state],
            name,
            diag.message_primary or str(err),
            state,
            diag.message_detail,
            diag.message_hint,
        )
    for prefix, status, name in _OTHER_STATUSES:
        if state.startswith(prefix):
            message = diag.message_primary or "the request could not be served"
            if status == 503:
                message = "the database is busy; try again"
            return ApiError(status, name, message, state or None)
    log.error("unexpected database error %s", state, exc_info=err)
    return ApiError(500, "internal", "internal error", None)


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    restaurant_id: int = Field(ge=1, le=BIGINT)
    party_size: int = Field(ge=1, le=100)
    start: AwareDatetime
    mode: Literal["queue", "instant"] = Field(
        "queue",
        description="queue: create and let the workers assign it; instant: book now or refuse",
    )
    duration_minutes: int | None = Field(None, ge=15, le=720)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    preferred_zone: str | None = Field(None, min_length=1, max_length=100)
    guest_email: str | None = Field(None, min_length=3, max_length=254)
    locale: str | None = Field(None, min_length=2, max_length=6)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, min_length=1, max_length=500)
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1)


Target = Literal[
    "assignment_pending", "confirmed", "failed", "cancelled", "seated", "finished", "no_show"
]


# The review page's buttons, by the state each moves the booking to.
ACTION_TARGETS: dict[str, Target] = {
    "requeue": "assignment_pending",
    "force_confirm": "confirmed",
    "manual_assign": "confirmed",
    "decline": "failed",
}


class StateIn(BaseModel):
    """A privileged transition, made by the RPC that owns it."""

    model_config = ConfigDict(extra="forbid")
    to: Target = Field(
        description=(
            "assignment_pending: requeue from manual_review; confirmed: force confirm on its"
            " hold or on table_ids (check_capacity: manual assign); failed: decline;"
            " cancelled, seated, finished, no_show: the floor's transitions"
        )
    )
    reason: Reason
    table_ids: TableIds | None = None
    check_capacity: bool = False
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1)


class ErrorBody(BaseModel):
    name: str
    sqlstate: str | None
    message: str
    detail: str | None = None
    hint: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": what}
    for status, what in (
        (401, "Not signed in, or the token is unknown, expired or revoked"),
        (403, "Not permitted, or the CSRF token is missing"),
        (404, "No such booking or restaurant (or another restaurant's)"),
        (409, "Conflict, stale version or not possible in the booking's state"),
        (422, "Bad input"),
        (503, "The database is busy; try again"),
    )
}


@dataclass
class Wakeups:
    """LISTEN allocator_events in one thread; open streams wait on it or on a short tick.

    A notification is only a wake-up: streams re-read what their member may see and never
    use its payload. Events that notify nobody (a worker's confirmation) are found by the
    tick.
    """

    conninfo: str
    generation: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _event: asyncio.Event | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._event = loop, asyncio.Event()
        self._thread = threading.Thread(target=self._listen, name="console-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _bump(self) -> None:
        self.generation += 1
        if self._event is not None:
            self._event.set()
            self._event = asyncio.Event()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute("listen allocator_events")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            if self._loop is not None:
                                self._loop.call_soon_threadsafe(self._bump)
            except psycopg.Error:
                self._stop.wait(1.0)

    async def wait(self, timeout: float) -> None:
        event = self._event
        if event is None:
            await asyncio.sleep(timeout)
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass(frozen=True)
class BoardFilters:
    """The board's filters: a local day (today by default), a restaurant, a state, a zone."""

    day: dt.date
    restaurant: int | None
    state: str | None
    zone: str | None

    def params(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "restaurant": self.restaurant,
            "state": self.state,
            "zone": self.zone,
        }


def board_filters(
    day: Annotated[dt.date | None, Query(alias="date")] = None,
    restaurant: Annotated[int | None, Query(ge=1, le=BIGINT)] = None,
    state: Annotated[str | None, Query(max_length=40)] = None,
    zone: Annotated[str | None, Query(max_length=100)] = None,
) -> BoardFilters:
    return BoardFilters(day or dt.date.today(), restaurant, state or None, zone or None)


Filters = Annotated[BoardFilters, Depends(board_filters)]


def create_app(
    db: ConsoleDB,
    secret: str,
    *,
    conninfo: str | None = None,
    https_only: bool = False,
    session_seconds: int = auth.SESSION_SECONDS,
) -> FastAPI:
    """The application. ``conninfo`` (the console login's) enables LISTEN wake-ups."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(state_meta=state_meta, STATES=STATES, level=level)
    wakeups = Wakeups(conninfo) if conninfo else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if wakeups is not None:
            wakeups.start(asyncio.get_running_loop())
        yield
        if wakeups is not None:
            wakeups.stop()

    app = FastAPI(
        title="allocator",
        version="0.1.0",
        summary="Staff console and HTTP API of the allocator booking engine",
        description=(
            "Authenticate with `Authorization: Bearer <token>` (`allocator staff token LOGIN`)"
            " or a console session (then send the session's CSRF token in `X-CSRF-Token` on"
            ' every POST). Errors carry the project\'s code: `{"error": {"name", "sqlstate",'
            ' "message"}}`; not found is 404, conflicts 409, bad input 422, not permitted 403.'
        ),
        lifespan=lifespan,
        # The reference at /docs is rendered here from the OpenAPI document: the usual
        # Swagger page loads its scripts from a CDN, which an offline site cannot reach.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="allocator_session",
        max_age=session_seconds,
        same_site="strict",
        https_only=https_only,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[..., Any]) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/api/") or request.headers.get("hx-request"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # -- who is asking ----------------------------------------------------------------

    def resolve(request: Request) -> auth.Staff | None:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
                raise ApiError(401, "unauthenticated", "use Authorization: Bearer <token>")
            row = db.one(None, "staff_for_token", {"digest": auth.token_digest(token.strip())})
            if row is None or row["login"] is None:
                raise ApiError(401, "unauthenticated", "the token is unknown, expired or revoked")
            info = db.one(None, "staff_session", {"login": row["login"]})
            if info is None or info["staff"] is None:
                raise ApiError(401, "unauthenticated", "the token's staff member is disabled")
            return auth.Staff.from_json(info["staff"], via_token=True)
        login = request.session.get("login")
        if not isinstance(login, str):
            return None
        since = request.session.get("since")
        if not isinstance(since, int | float) or time.time() - since > session_seconds:
            request.session.clear()
            return None
        info = db.one(None, "staff_session", {"login": login})
        staff = info["staff"] if info else None
        if staff is None or staff["password_changed_at"] != request.session.get("pwd_at"):
            request.session.clear()
            return None
        return auth.Staff.from_json(staff, via_token=False)

    def check_csrf(request: Request, staff: auth.Staff, form_token: str | None = None) -> None:
        if staff.via_token or request.method in ("GET", "HEAD", "OPTIONS"):
            return
        given = form_token or request.headers.get(auth.CSRF_HEADER)
        if not auth.csrf_matches(request.session.get("csrf"), given):
            raise ApiError(403, "csrf", "the CSRF token is missing or wrong; reload the page")

    async def api_staff(request: Request) -> auth.Staff:
        staff = await run_in_threadpool(resolve, request)
        if staff is None:
            raise ApiError(401, "unauthenticated", "sign in, or send Authorization: Bearer <token>")
        check_csrf(request, staff)
        return staff

    async def page_staff(request: Request) -> auth.Staff:
        staff = await run_in_threadpool(resolve, request)
        if staff is None:
            raise SignIn(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return staff

    ApiStaff = Annotated[auth.Staff, Depends(api_staff)]
    PageStaff = Annotated[auth.Staff, Depends(page_staff)]

    # -- errors -----------------------------------------------------------------------

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, err: ApiError) -> Response:
        if is_api(request) or request.headers.get("hx-request"):
            return JSONResponse(err.body(), status_code=err.status)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"error": err, "staff": None, "csrf": None},
            status_code=err.status,
        )

    @app.exception_handler(psycopg.Error)
    async def on_db_error(request: Request, err: psycopg.Error) -> Response:
        return await on_api_error(request, db_error(db, err))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in err.errors()[:5]
        )
        return await on_api_error(request, ApiError(422, "invalid_argument", problems, "RA001"))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> Response:
        if err.status_code == 400:
            # A body that cannot be parsed is bad input like any other: 422.
            return await on_api_error(
                request, ApiError(422, "invalid_argument", str(err.detail), "RA001")
            )
        name = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return await on_api_error(request, ApiError(err.status_code, name, str(err.detail)))

    @app.exception_handler(SignIn)
    async def on_sign_in(request: Request, err: SignIn) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login?" + urlencode({"next": err.next}), status_code=303)

    # -- helpers ----------------------------------------------------------------------

    def page(request: Request, name: str, staff: auth.Staff | None, **context: Any) -> Response:
        context.update(staff=staff, csrf=csrf_of(request), flash=request.session.pop("flash", None))
        return templates.TemplateResponse(request, name, context)

    def flash(request: Request, kind: Literal["ok", "error"], message: str) -> None:
        request.session["flash"] = {"kind": kind, "message": message}

    def rpc(
        staff: auth.Staff, name: str, params: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        """Call a booking RPC for the member; with expected_version, only on that version."""
        with db.acting(staff.login) as cur:
            if expected_version is not None and "booking_id" in params:
                cur.execute(
                    _q("expect_version"),
                    {"booking_id": params["booking_id"], "expected_version": expected_version},
                )
            cur.execute(_q(name), params)
            out = cur.fetchone()
            assert out is not None
            return dict(out["booking"])

    def transition(staff: auth.Staff, booking_id: int, body: StateIn) -> dict[str, Any]:
        base = {"booking_id": booking_id, "actor": staff.actor, "reason": body.reason}
        if body.to == "confirmed":
            if body.check_capacity:
                if body.table_ids is None:
                    raise ApiError(
                        422, "invalid_argument", "check_capacity needs table_ids", "RA001"
                    )
                return rpc(
                    staff,
                    "manual_assign",
                    {**base, "table_ids": body.table_ids},
                    body.expected_version,
                )
            return rpc(
                staff, "force_confirm", {**base, "table_ids": body.table_ids}, body.expected_version
            )
        if body.table_ids is not None:
            raise ApiError(422, "invalid_argument", "table_ids only go with to=confirmed", "RA001")
        if body.to == "assignment_pending":
            return rpc(staff, "requeue", {**base, "expected_version": body.expected_version})
        if body.to == "failed":
            return rpc(staff, "decline_booking", base, body.expected_version)
        name = {
            "cancelled": "cancel_booking",
            "seated": "seat_booking",
            "finished": "finish_booking",
            "no_show": "mark_no_show",
        }[body.to]
        return rpc(staff, name, {**base, "expected_version": body.expected_version})

    # -- sign in ----------------------------------------------------------------------

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> Response:
        csrf_of(request)
        return page(request, "login.html", None, next=safe_next(next), error=None)

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        login: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=auth.MAX_PASSWORD)],
        csrf_token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        if not auth.csrf_matches(request.session.get("csrf"), csrf_token):
            raise ApiError(403, "csrf", "the sign-in form expired; reload the page and try again")
        login = login.strip().lower()
        row = db.one(None, "staff_password_hash", {"login": login})
        if not auth.verify_password(row["hash"] if row else None, password):
            request.session.clear()
            csrf_of(request)
            response = page(
                request, "login.html", None, next=safe_next(next), error="Wrong login or password."
            )
            response.status_code = 401
            return response
        info = db.one(None, "staff_session", {"login": login})
        assert info is not None and info["staff"] is not None
        request.session.clear()
        request.session.update(
            login=login,
            pwd_at=info["staff"]["password_changed_at"],
            since=int(time.time()),
            csrf=auth.new_csrf(),
        )
        return RedirectResponse(safe_next(next), status_code=303)

    @app.post("/logout", include_in_schema=False)
    def logout(
        request: Request, staff: PageStaff, csrf_token: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        check_csrf(request, staff, csrf_token)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- pages ------------------------------------------------------------------------

    def restaurants(staff: auth.Staff) -> list[dict[str, Any]]:
        return db.all(staff.login, "restaurants")

    def board_data(cur: Cursor, f: BoardFilters) -> dict[str, Any]:
        params = {
            "day": f.day,
            "restaurant_id": f.restaurant,
            "state": f.state,
            "zone": f.zone,
            "per_state": 60,
        }
        rows = cur.execute(_q("board"), params).fetchall()
        return {"columns": board_columns(rows, f.state)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def board(request: Request, staff: PageStaff, f: Filters) -> Response:
        query = urlencode({k: v for k, v in f.params().items() if v})
        # One transaction for the whole page.
        with db.acting(staff.login) as cur:
            mine = cur.execute(_q("restaurants")).fetchall()
            zones = cur.execute(_q("zones"), {"restaurant_id": f.restaurant}).fetchall()
            data = board_data(cur, f)
        return page(
            request,
            "board.html",
            staff,
            day=f.day,
            restaurant=f.restaurant,
            state=f.state,
            zone=f.zone,
            restaurants=mine,
            zones=sorted({z["name"] for z in zones}),
            query=query,
            **data,
        )

    @app.get("/board/cards", response_class=HTMLResponse, include_in_schema=False)
    def board_cards(request: Request, staff: PageStaff, f: Filters) -> Response:
        with db.acting(staff.login) as cur:
            data = board_data(cur, f)
        return templates.TemplateResponse(request, "_board_columns.html", data)

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review(
        request: Request,
        staff: PageStaff,
        restaurant: Annotated[int | None, Query(ge=1, le=BIGINT)] = None,
    ) -> Response:
        rows = db.all(staff.login, "review_queue", {"restaurant_id": restaurant, "limit": 200})
        return page(
            request,
            "review.html",
            staff,
            rows=rows,
            restaurant=restaurant,
            restaurants=restaurants(staff),
        )

    @app.get("/review/{booking_id}", response_class=HTMLResponse, include_in_schema=False)
    def resolve_page(request: Request, staff: PageStaff, booking_id: BookingId) -> Response:
        with db.acting(staff.login) as cur:
            booking = cur.execute(_q("booking"), {"booking_id": booking_id}).fetchone()
            if booking is None:
                raise ApiError(404, "not_found", f"booking {booking_id} does not exist", "RA002")
            choices = []
            if booking["state"] == "manual_review":
                choices = cur.execute(
                    _q("table_choices"),
                    {
                        "booking_id": booking_id,
                        "restaurant_id": booking["restaurant_id"],
                        "limit": 8,
                    },
                ).fetchall()
        return page(request, "resolve.html", staff, booking=booking, choices=choices)

    @app.post("/review/{booking_id}", include_in_schema=False)
    def resolve_action(
        request: Request,
        staff: PageStaff,
        booking_id: BookingId,
        action: Annotated[Literal["requeue", "force_confirm", "manual_assign", "decline"], Form()],
        reason: Annotated[str, Form(max_length=500)] = "",
        plan: Annotated[str, Form(max_length=200)] = "",
        version: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
        csrf_token: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        check_csrf(request, staff, csrf_token)
        # The chosen tables go only with the actions that seat; a requeue or a decline made
        # with a table still ticked ignores it.
        table_ids = None
        if action in ("force_confirm", "manual_assign"):
            table_ids = [int(t) for t in plan.split(",") if t.strip().isdigit()][:6] or None
        to = ACTION_TARGETS[action]
        try:
            if not reason.strip():
                raise ApiError(422, "invalid_argument", "give a reason", "RA001")
            if action in ("force_confirm", "manual_assign") and table_ids is None:
                raise ApiError(422, "invalid_argument", "choose the tables", "RA001")
            transition(
                staff,
                booking_id,
                StateIn(
                    to=to,
                    reason=reason.strip(),
                    table_ids=table_ids,
                    check_capacity=action == "manual_assign",
                    expected_version=version,
                ),
            )
        except psycopg.Error as err:
            flash(request, "error", f"Booking {booking_id}: {db_error(db, err).message}")
            return RedirectResponse(f"/review/{booking_id}", status_code=303)
        except ApiError as err:
            if err.status in (401, 403) and err.name in ("csrf", "unauthenticated"):
                raise
            flash(request, "error", f"Booking {booking_id}: {err.message}")
            return RedirectResponse(f"/review/{booking_id}", status_code=303)
        done = {
            "requeue": "requeued",
            "force_confirm": "confirmed",
            "manual_assign": "assigned and confirmed",
            "decline": "declined",
        }[action]
        flash(request, "ok", f"Booking {booking_id} {done}.")
        return RedirectResponse("/review", status_code=303)

    @app.get("/bookings/{booking_id}", response_class=HTMLResponse, include_in_schema=False)
    def booking_page(request: Request, staff: PageStaff, booking_id: BookingId) -> Response:
        with db.acting(staff.login) as cur:
            booking = cur.execute(_q("booking"), {"booking_id": booking_id}).fetchone()
            if booking is None:
                raise ApiError(404, "not_found", f"booking {booking_id} does not exist", "RA002")
            timeline = cur.execute(
                _q("booking_timeline"),
                {"booking_id": booking_id, "restaurant_id": booking["restaurant_id"]},
            ).fetchall()
        return page(request, "booking.html", staff, booking=booking, timeline=timeline)

    @app.get("/floor", response_class=HTMLResponse, include_in_schema=False)
    def floor(
        request: Request,
        staff: PageStaff,
        restaurant: Annotated[int | None, Query(ge=1, le=BIGINT)] = None,
        day: Annotated[dt.date | None, Query(alias="date")] = None,
    ) -> Response:
        mine = restaurants(staff)
        day = day or dt.date.today()
        chosen = next((r for r in mine if r["id"] == restaurant), mine[0] if mine else None)
        grid = week = None
        if chosen is not None:
            with db.acting(staff.login) as cur:
                grid = floor_grid(cur, chosen, day)
                week = heatmap(
                    cur.execute(
                        _q("occupancy_week"), {"restaurant_id": chosen["id"], "day": day}
                    ).fetchall()
                )
        return page(
            request,
            "floor.html",
            staff,
            restaurants=mine,
            chosen=chosen,
            day=day,
            grid=grid,
            week=week,
        )

    @app.get("/health", response_class=HTMLResponse, include_in_schema=False)
    def health(request: Request, staff: PageStaff) -> Response:
        with db.acting(staff.login) as cur:
            data = {
                name: cur.execute(_q(f"health_{name}")).fetchall()
                for name in ("breakers", "queue", "workers", "optimizer")
            }
        return page(request, "health.html", staff, **data)

    @app.get("/events", include_in_schema=False)
    async def events(request: Request, staff: PageStaff) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            last: int | None = None
            quiet_since = checked = time.monotonic()
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                if time.monotonic() - checked > STREAM_RECHECK_SECONDS:
                    # A stream outlives no session: a new password, a disabled member or an
                    # expired session ends it (the browser then reconnects and is refused).
                    if await run_in_threadpool(resolve, request) is None:
                        return
                    checked = time.monotonic()
                row = await run_in_threadpool(db.one, staff.login, "watermark")
                mark = int(row["id"]) if row else 0
                if mark != last:
                    if last is not None:
                        yield f"event: changed\ndata: {mark}\n\n"
                    last, quiet_since = mark, time.monotonic()
                elif time.monotonic() - quiet_since > STREAM_HEARTBEAT_SECONDS:
                    yield ": still here\n\n"
                    quiet_since = time.monotonic()
                if wakeups is not None:
                    await wakeups.wait(STREAM_TICK_SECONDS)
                else:
                    await asyncio.sleep(STREAM_TICK_SECONDS)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # -- HTTP API ---------------------------------------------------------------------

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_docs(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "api_docs.html", {"spec": app.openapi(), "staff": None, "csrf": None}
        )

    @app.get("/api/restaurants", tags=["restaurants"], responses=ERRORS)
    def api_restaurants(staff: ApiStaff) -> list[dict[str, Any]]:
        """The restaurants the member works for."""
        return restaurants(staff)

    @app.get("/api/restaurants/{restaurant_id}/slots", tags=["bookings"], responses=ERRORS)
    def api_slots(
        staff: ApiStaff,
        restaurant_id: RestaurantId,
        party_size: Annotated[int, Query(ge=1, le=100)],
        start: Annotated[AwareDatetime, Query(alias="from")],
        end: Annotated[AwareDatetime, Query(alias="to")],
        zone: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    ) -> list[dict[str, Any]]:
        """Start times with room for the party between two instants (find_slots)."""
        return db.all(
            staff.login,
            "find_slots",
            {
                "restaurant_id": restaurant_id,
                "party_size": party_size,
                "from": start,
                "to": end,
                "zone": zone,
            },
        )

    @app.post("/api/bookings", tags=["bookings"], status_code=201, responses=ERRORS)
    def api_create(staff: ApiStaff, body: BookingIn) -> dict[str, Any]:
        """Create a booking: queued for the workers (create_booking) or booked now (book)."""
        params = body.model_dump(exclude={"mode"})
        params["actor"] = staff.actor
        if body.mode == "instant":
            params.pop("duration_minutes")
            return rpc(staff, "book", params)
        return rpc(staff, "create_booking", params)

    @app.get("/api/bookings/{booking_id}", tags=["bookings"], responses=ERRORS)
    def api_booking(staff: ApiStaff, booking_id: BookingId) -> dict[str, Any]:
        """A booking: state, version, time, party, tables."""
        row = db.one(staff.login, "booking", {"booking_id": booking_id})
        if row is None:
            raise ApiError(404, "not_found", f"booking {booking_id} does not exist", "RA002")
        return public_booking(row)

    @app.post("/api/bookings/{booking_id}/cancel", tags=["bookings"], responses=ERRORS)
    def api_cancel(staff: ApiStaff, booking_id: BookingId, body: CancelIn) -> dict[str, Any]:
        """Cancel a booking (cancel_booking), optionally only at an expected version."""
        return rpc(
            staff,
            "cancel_booking",
            {
                "booking_id": booking_id,
                "actor": staff.actor,
                "reason": body.reason,
                "expected_version": body.expected_version,
            },
        )

    @app.get("/api/internal/bookings/{booking_id}/attempts", tags=["internal"], responses=ERRORS)
    def api_attempts(staff: ApiStaff, booking_id: BookingId) -> list[dict[str, Any]]:
        """The booking's assignment attempts, oldest first (booking_attempts)."""
        return db.all(staff.login, "booking_attempts", {"booking_id": booking_id})

    @app.get("/api/internal/bookings/{booking_id}/state", tags=["internal"], responses=ERRORS)
    def api_state(staff: ApiStaff, booking_id: BookingId) -> dict[str, Any]:
        """The booking's state and version, and its history (booking_history)."""
        with db.acting(staff.login) as cur:
            row = cur.execute(_q("booking"), {"booking_id": booking_id}).fetchone()
            if row is None:
                raise ApiError(404, "not_found", f"booking {booking_id} does not exist", "RA002")
            history = cur.execute(_q("booking_history"), {"booking_id": booking_id}).fetchall()
        return {**public_booking(row), "history": history}

    @app.post("/api/internal/bookings/{booking_id}/state", tags=["internal"], responses=ERRORS)
    def api_transition(staff: ApiStaff, booking_id: BookingId, body: StateIn) -> dict[str, Any]:
        """A privileged transition through the state machine, by the RPC that owns it."""
        return transition(staff, booking_id, body)

    return app


class SignIn(Exception):
    """A page was asked for without a session: go to the sign-in page, then come back."""

    def __init__(self, next: str) -> None:
        super().__init__(next)
        self.next = next


def _q(name: str) -> str:
    from control.web.db import q

    return q(name)


def csrf_of(request: Request) -> str:
    """The session's CSRF token, made on first use (the sign-in form has one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = auth.new_csrf()
        request.session["csrf"] = token
    return token


def safe_next(target: str) -> str:
    """Only a path on this site is followed after signing in."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def public_booking(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "restaurant_id",
        "state",
        "version",
        "party_size",
        "starts_at",
        "ends_at",
        "tables",
        "attempts",
        "reason",
        "preferred_zone",
        "external_id",
    )
    return {k: row[k] for k in keys}
