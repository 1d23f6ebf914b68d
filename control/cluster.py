"""The embedded, project-local PostgreSQL cluster.

The cluster lives in ``.pgdata/`` at the project root (``data/``, ``run/`` for the socket,
``log/`` for the server log, ``cluster.json`` for its port). initdb refuses to run as root,
so when the caller is root every server command runs as the ``postgres`` user; if that user
cannot reach the project folder, ``.pgdata`` is a link to a folder it owns.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

PG_MAJOR = 15
DATABASE = "allocator"
SUPERUSER = "postgres"
SERVICE_USER = "postgres"
# pg_cron runs the schedules; pg_stat_statements records every statement's timings.
PRELOAD = "pg_cron,pg_stat_statements"
OLD_PRELOAD_LINE = "shared_preload_libraries = 'pg_cron'\n"


class ClusterError(RuntimeError):
    """The embedded cluster could not be set up, started or stopped."""


def project_root() -> Path:
    """The folder holding the project's pyproject.toml (ALLOCATOR_HOME overrides)."""
    env = os.environ.get("ALLOCATOR_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "pyproject.toml").exists() and (folder / "control").is_dir():
            return folder
    return cwd


def pg_bindir() -> Path:
    """Where PostgreSQL's server programs are (PG_BINDIR overrides)."""
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    debian = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if debian.is_dir():
        return debian
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(f"PostgreSQL {PG_MAJOR} server programs not found; run `make setup`")


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_service_user(cmd: list[str]) -> list[str]:
    """Prefix a command so it runs as the postgres user when we are root."""
    if _is_root():
        return ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return cmd


def _service_user_can_reach(path: Path) -> bool:
    probe = subprocess.run(
        ["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(path)],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _chown_service_user(path: Path) -> None:
    if _is_root():
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _free_port(preferred: int) -> int:
    candidates: list[int] = [preferred, *range(54320, 54920)]
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ClusterError("no free TCP port found for the embedded cluster")


@dataclass(frozen=True)
class Cluster:
    """A project-local PostgreSQL cluster managed with pg_ctl."""

    home: Path

    @classmethod
    def for_project(cls, root: Path | None = None) -> Cluster:
        """The cluster that belongs to the project at ``root`` (default: this project)."""
        return cls((root or project_root()) / ".pgdata")

    @property
    def _base(self) -> Path:
        # The real folder: the postgres user may not be able to follow the .pgdata link.
        return self.home.resolve()

    @property
    def data_dir(self) -> Path:
        return self._base / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base / "run"

    @property
    def log_file(self) -> Path:
        return self._base / "log" / "postgresql.log"

    @property
    def _state_file(self) -> Path:
        return self.home / "cluster.json"

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    @property
    def port(self) -> int:
        try:
            state = json.loads(self._state_file.read_text())
            return int(state["port"])
        except (OSError, ValueError, KeyError) as exc:
            raise ClusterError(f"cluster at {self.home} is not initialised") from exc

    def url(self, database: str = DATABASE) -> str:
        """A libpq URL that reaches the cluster through its Unix socket."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def _prepare_home(self) -> None:
        """Create .pgdata where the service user can reach it."""
        if self.home.exists() or self.home.is_symlink():
            return
        self.home.parent.mkdir(parents=True, exist_ok=True)
        if _is_root() and not _service_user_can_reach(self.home.parent):
            digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
            target = Path("/var/lib/postgresql/allocator") / digest
            target.parent.mkdir(parents=True, exist_ok=True)
            _chown_service_user(target.parent)
            if target.exists():
                shutil.rmtree(target)
            target.mkdir()
            self.home.symlink_to(target, target_is_directory=True)
        else:
            self.home.mkdir()
        _chown_service_user(self.home.resolve())

    def init(self) -> None:
        """initdb the cluster and write its configuration (no-op when already done)."""
        if self.initialized:
            return
        self._prepare_home()
        for sub in (self.data_dir, self.socket_dir, self.log_file.parent):
            sub.mkdir(exist_ok=True)
            _chown_service_user(sub)
        preferred = 54320 + int(hashlib.sha1(str(self.home).encode()).hexdigest(), 16) % 600
        port = _free_port(preferred)
        self._state_file.write_text(json.dumps({"port": port}) + "\n")
        self._run(
            [
                str(pg_bindir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            "initdb",
        )
        conf = self.data_dir / "allocator.conf"
        conf.write_text(
            "# written by `allocator db start`; edit freely, it is read at server start\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "listen_addresses = '127.0.0.1'\n"
            "max_connections = 200\n"
            "shared_buffers = 256MB\n"
            f"shared_preload_libraries = '{PRELOAD}'\n"
            f"cron.database_name = '{DATABASE}'\n"
            f"cron.host = '{self.socket_dir}'\n"
            "timezone = 'UTC'\n"
            "log_line_prefix = '%m [%p] %q%u@%d '\n"
        )
        _chown_service_user(conf)
        with (self.data_dir / "postgresql.conf").open("a") as main_conf:
            main_conf.write("\ninclude_if_exists = 'allocator.conf'\n")

    def running(self) -> bool:
        """Whether the server is up (pg_ctl status)."""
        if not self.initialized:
            return False
        result = subprocess.run(
            _as_service_user([str(pg_bindir() / "pg_ctl"), "status", "-D", str(self.data_dir)]),
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def start(self) -> bool:
        """Start the server and create the project database; False if it was already up."""
        self.init()
        started = False
        if not self.running():
            self._upgrade_preload()
            self._run(
                [
                    str(pg_bindir() / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                ],
                "pg_ctl start",
            )
            started = True
        self._ensure_database()
        return started

    def stop(self) -> bool:
        """Stop the server (fast shutdown); False if it was not running."""
        if not self.running():
            return False
        self._run(
            [str(pg_bindir() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir)],
            "pg_ctl stop",
        )
        return True

    def _upgrade_preload(self) -> None:
        """A cluster made before pg_stat_statements was preloaded gets it at its next start,
        unless the line was edited by hand."""
        conf = self.data_dir / "allocator.conf"
        try:
            text = conf.read_text()
        except OSError:
            return
        if OLD_PRELOAD_LINE in text:
            conf.write_text(
                text.replace(OLD_PRELOAD_LINE, f"shared_preload_libraries = '{PRELOAD}'\n")
            )

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'create database "{DATABASE}"')
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("create extension if not exists pg_stat_statements")

    def _run(self, cmd: list[str], what: str) -> None:
        result = subprocess.run(_as_service_user(cmd), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
            raise ClusterError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}{tail}"
            )
