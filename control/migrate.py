"""Schema migrations with alembic; each revision applies SQL files from sql/."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from control.cluster import project_root


def alembic_config(url: str | None = None) -> Config:
    """An alembic configuration for the project database (or ``url``)."""
    config = Config()
    config.set_main_option("script_location", str(project_root() / "migrations"))
    if url is not None:
        config.attributes["conninfo"] = url
    return config


def upgrade(revision: str = "head", url: str | None = None) -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str = "base", url: str | None = None) -> None:
    """Revert migrations down to ``revision``."""
    command.downgrade(alembic_config(url), revision)


def current(url: str | None = None) -> None:
    """Print the revision the database is at."""
    command.current(alembic_config(url), verbose=False)


def history() -> None:
    """Print the list of revisions."""
    command.history(alembic_config(), verbose=False)
