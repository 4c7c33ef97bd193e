"""The warehouse connection, in one place: the SQLAlchemy engine and dbt's profile read it.

`ONRAMP_DATABASE_URL` wins. Without it an embedded PostgreSQL is started on demand in
`$ONRAMP_HOME/postgres` and left running, so later commands and runs reuse it. The embedded server
comes from the `pgserver` wheel, or from PostgreSQL binaries on the machine where pgserver is not
installable (Python 3.13+).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import sqlalchemy as sa

from onramp.errors import OnrampError
from onramp.settings import Settings

log = logging.getLogger(__name__)


class WarehouseError(OnrampError):
    """The warehouse cannot be reached or started; the message is one line for the user."""


def database_url(settings: Settings | None = None) -> str:
    """A libpq URL for the warehouse, starting the embedded server when none is configured."""
    settings = settings or Settings.from_env()
    if settings.database_url:
        return settings.database_url
    return _embedded_url(str(settings.postgres_dir))


@functools.cache
def _embedded_url(pgdata: str) -> str:
    path = Path(pgdata)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseError(f"cannot create {path.parent}: {exc.strerror}") from exc
    if importlib.util.find_spec("pgserver") is None:  # no wheel for this Python
        return _start_with_system_binaries(path)
    return _start_with_pgserver(path)


def _start_with_pgserver(path: Path) -> str:
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes with it.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    # pgserver logs the whole server log on failure; we report one line instead.
    logging.getLogger("pgserver").setLevel(logging.CRITICAL)
    try:
        # cleanup_mode=None: the server outlives this process and is reused by the next command.
        server = pgserver.get_server(path, cleanup_mode=None)
        return server.get_uri("postgres")
    except Exception as exc:  # pgserver raises bare asserts and CalledProcessError
        raise WarehouseError(
            f"the embedded PostgreSQL in {path} did not start: {_last_log_line(path, exc)} "
            "(free disk space, remove a stale postmaster.pid, or set ONRAMP_DATABASE_URL)"
        ) from exc


def _last_log_line(path: Path, exc: BaseException) -> str:
    for log_file in (path / "pgserver.log", path / "server.log", path / "log.txt"):
        if log_file.exists():
            lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
            for line in reversed(lines):
                if "FATAL" in line or "ERROR" in line or "PANIC" in line:
                    return line.strip()
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def _find_pg_bin() -> Path | None:
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and shutil.which("initdb"):
        return Path(pg_ctl).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "pg_ctl").exists() and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def _start_with_system_binaries(path: Path) -> str:
    """Fallback for machines without the pgserver wheel: initdb + pg_ctl from the machine."""
    bindir = _find_pg_bin()
    if bindir is None:
        raise WarehouseError(
            "no embedded PostgreSQL here (pgserver is not installed and no pg_ctl/initdb found): "
            "set ONRAMP_DATABASE_URL"
        )
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        run_as = ["runuser", "-u", "postgres", "--"]
    socket_dir = path if len(str(path)) < 80 else _short_socket_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        socket_dir.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(path, "postgres", "postgres")
            shutil.chown(socket_dir, "postgres", "postgres")
        if not (path / "PG_VERSION").exists():
            subprocess.run(
                [
                    *run_as,
                    str(bindir / "initdb"),
                    "-D",
                    str(path),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=utf8",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        status = subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(path), "status"], capture_output=True
        )
        if status.returncode != 0:
            subprocess.run(
                [
                    *run_as,
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(path),
                    "-w",
                    "-l",
                    str(path / "server.log"),
                    "-o",
                    f"-h '' -k {socket_dir}",
                    "start",
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )
    except (OSError, LookupError, subprocess.SubprocessError) as exc:
        raise WarehouseError(
            f"the embedded PostgreSQL in {path} did not start: {_last_log_line(path, exc)} "
            "(set ONRAMP_DATABASE_URL to use another server)"
        ) from exc
    return f"postgresql://postgres:@/postgres?host={socket_dir}"


def _short_socket_dir(path: Path) -> Path:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"onramp-pg-{digest}"


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy wants the driver named: postgresql:// -> postgresql+psycopg://."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@functools.cache
def _engine_for(url: str) -> sa.Engine:
    # hide_parameters: bound values (addresses, payloads) never appear in an error's text.
    return sa.create_engine(
        sqlalchemy_url(url), pool_pre_ping=True, future=True, hide_parameters=True
    )


def get_engine(settings: Settings | None = None) -> sa.Engine:
    """The one engine for this process and warehouse."""
    url = database_url(settings)
    engine = _engine_for(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise WarehouseError(f"cannot connect to the warehouse: {first}") from exc
    return engine


def connection_parts(url: str) -> dict[str, str]:
    """host / port / user / password / dbname of a libpq URL (socket host from ?host=)."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "localhost"])[0]
    return {
        "host": unquote(host),
        "port": str(parsed.port or query.get("port", ["5432"])[0]),
        "user": unquote(parsed.username or "postgres"),
        "password": unquote(parsed.password or ""),
        "dbname": unquote(parsed.path.lstrip("/") or "postgres"),
    }


# libpq connection parameters of ONRAMP_DATABASE_URL that dbt's profile has no field for (or that
# it drops): passed to dbt as libpq's own environment variables, which psycopg2 under dbt reads
# for any parameter the profile leaves unset. TLS first: a URL that asks for sslmode=verify-full
# must not get a plain-text dbt connection.
LIBPQ_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "sslcertmode": "PGSSLCERTMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "requiressl": "PGREQUIRESSL",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
    "require_auth": "PGREQUIREAUTH",
    "krbsrvname": "PGKRBSRVNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "passfile": "PGPASSFILE",
}


def libpq_env(url: str) -> dict[str, str]:
    """PG* environment variables for the libpq parameters given in the URL's query string."""
    query = parse_qs(urlparse(url).query)
    return {env: query[key][-1] for key, env in LIBPQ_ENV.items() if query.get(key)}


def dbt_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment variables that `dbt_project/profiles.yml` reads, for dbt in or out of process,
    plus libpq's own PG* variables for the URL's TLS and other connection settings."""
    url = database_url(settings)
    parts = connection_parts(url)
    return {
        "ONRAMP_PG_HOST": parts["host"],
        "ONRAMP_PG_PORT": parts["port"],
        "ONRAMP_PG_USER": parts["user"],
        "ONRAMP_PG_PASSWORD": parts["password"],
        "ONRAMP_PG_DBNAME": parts["dbname"],
        "ONRAMP_DBT_THREADS": str(dbt_threads()),
        **libpq_env(url),
    }


def dbt_threads() -> int:
    """dbt's threads: ONRAMP_DBT_THREADS, else one per core up to 4.

    More models at once than there are cores only makes each of them wait, the more so with the
    embedded PostgreSQL on the same machine.
    """
    configured = os.environ.get("ONRAMP_DBT_THREADS", "").strip()
    if configured:
        try:
            threads = int(configured)
        except ValueError:
            threads = 0
        if threads < 1:
            raise OnrampError(f"ONRAMP_DBT_THREADS must be a number above 0, got {configured!r}")
        return threads
    return max(1, min(4, os.cpu_count() or 1))
