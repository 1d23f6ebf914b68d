"""The project's SQLSTATEs as Python exceptions.

Every error an allocator function raises on purpose has a SQLSTATE of class RA (listed in
allocator.error_codes and docs/errors.md); ``translate`` turns a psycopg error into the
matching class, keeping the message, DETAIL and HINT.
"""

from __future__ import annotations

import psycopg


class AllocatorError(Exception):
    """Base class of every error the database raises on purpose."""

    sqlstate = "RA000"
    name = "allocator_error"

    def __init__(self, message: str, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        parts = [self.message]
        if self.detail:
            parts.append(f"DETAIL: {self.detail}")
        if self.hint:
            parts.append(f"HINT: {self.hint}")
        return "\n".join(parts)


class InvalidArgument(AllocatorError):
    """An argument is missing, out of range or malformed."""

    sqlstate, name = "RA001", "invalid_argument"


class NotFound(AllocatorError):
    """A referenced restaurant, booking, table, zone or hold does not exist."""

    sqlstate, name = "RA002", "not_found"


class Conflict(AllocatorError):
    """A table is already held or allocated for an overlapping period."""

    sqlstate, name = "RA003", "conflict"


class StaleVersion(AllocatorError):
    """The expected version does not match the current version."""

    sqlstate, name = "RA004", "stale_version"


class InvalidTransition(AllocatorError):
    """The booking cannot move from its current state to the requested one."""

    sqlstate, name = "RA005", "invalid_transition"


class InvalidSettings(AllocatorError):
    """Restaurant settings or time zone are invalid."""

    sqlstate, name = "RA006", "invalid_settings"


class CrossRestaurant(AllocatorError):
    """Objects of different restaurants were mixed in one request."""

    sqlstate, name = "RA007", "cross_restaurant"


class IdempotencyMismatch(AllocatorError):
    """An idempotency key was reused with different arguments."""

    sqlstate, name = "RA008", "idempotency_mismatch"


class NotPermitted(AllocatorError):
    """The caller or actor may not perform this action."""

    sqlstate, name = "RA009", "not_permitted"


class HoldNotActive(AllocatorError):
    """The hold has expired, was released or was already confirmed."""

    sqlstate, name = "RA010", "hold_not_active"


class CapacityMismatch(AllocatorError):
    """The tables do not fit the party size."""

    sqlstate, name = "RA011", "capacity_mismatch"


class InvalidLayout(AllocatorError):
    """A floor layout (zones, tables, adjacency) is inconsistent."""

    sqlstate, name = "RA012", "invalid_layout"


class OutsideService(AllocatorError):
    """The time is outside the restaurant's service periods, or the day is closed."""

    sqlstate, name = "RA013", "outside_service"


class Unavailable(AllocatorError):
    """No table or pacing room seats the party at that time."""

    sqlstate, name = "RA014", "unavailable"


BY_SQLSTATE: dict[str, type[AllocatorError]] = {
    cls.sqlstate: cls for cls in AllocatorError.__subclasses__()
}
# An exclusion violation can only come from allocations overlapping: the same conflict.
BY_SQLSTATE["23P01"] = Conflict


def translate(error: psycopg.Error) -> AllocatorError | psycopg.Error:
    """The project exception for a database error, or the error itself if it is not ours."""
    diag = error.diag
    cls = BY_SQLSTATE.get(diag.sqlstate or "")
    if cls is None:
        return error
    translated = cls(diag.message_primary or str(error), diag.message_detail, diag.message_hint)
    translated.__cause__ = error
    return translated
