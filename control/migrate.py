"""Schema migrations with alembic: revisions for the state, then the schema's code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory


def alembic_config(url: str | None = None, code_action: str | None = None) -> Config:
    """An alembic configuration for the project database (or ``url``).

    ``code_action`` is "apply" (re-apply the code after an upgrade) or "forget" (after a
    downgrade, so the next upgrade applies it again).
    """
    config = Config()
    config.set_main_option("script_location", "control:migrations")
    if url is not None:
        config.attributes["conninfo"] = url
    if code_action is not None:
        config.attributes["code_action"] = code_action
    return config


def upgrade(revision: str = "head", url: str | None = None) -> None:
    """Apply migrations up to ``revision``, then the code if it (or the revision) changed."""
    command.upgrade(alembic_config(url, "apply"), revision)


def downgrade(revision: str = "base", url: str | None = None) -> None:
    """Revert migrations down to ``revision``."""
    command.downgrade(alembic_config(url, "forget"), revision)


def current(url: str | None = None) -> None:
    """Print the revision the database is at."""
    command.current(alembic_config(url), verbose=False)


def history() -> None:
    """Print the list of revisions."""
    command.history(alembic_config(), verbose=False)


def new_revision(message: str) -> list[Path]:
    """Start a revision of the state after head: NNNN_slug.py with its .sql and .down.sql
    (to fill in). The files are written into the source tree; returns their paths."""
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    number = max((int(r.revision) for r in script.walk_revisions()), default=0) + 1
    revision = f"{number:04d}"
    command.revision(config, message=message, rev_id=revision)
    (python,) = Path(script.versions).glob(f"{revision}_*.py")
    up = python.with_suffix(".sql")
    down = python.with_suffix(".down.sql")
    up.write_text(f"-- Revision {revision}: {message}\n")
    down.write_text(f"-- Reverts revision {revision}.\n")
    return [python, up, down]
