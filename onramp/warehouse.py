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
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

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


PASSWORD_FILE = ".postgres_password"  # in ONRAMP_HOME, next to the data folder, mode 0600


def _start_with_system_binaries(path: Path) -> str:
    """Fallback for machines without the pgserver wheel: initdb + pg_ctl from the machine.

    Other local users get nothing: no TCP listener, password (SCRAM) authentication on the
    socket with a random password kept 0600 in ONRAMP_HOME, and a socket directory that is 0700
    and owned by the server's user (a long data path puts the socket in the temp folder, where
    anyone could have created the directory first). Paths may contain spaces.
    """
    bindir = _find_pg_bin()
    if bindir is None:
        raise WarehouseError(
            "no embedded PostgreSQL here (pgserver is not installed and no pg_ctl/initdb found): "
            "set ONRAMP_DATABASE_URL"
        )
    run_as: list[str] = []
    owner = os.geteuid()
    if owner == 0:  # postgres refuses to run as root
        import pwd

        run_as = ["runuser", "-u", "postgres", "--"]
        try:
            owner = pwd.getpwnam("postgres").pw_uid
        except KeyError as exc:
            raise WarehouseError(
                "running as root needs a 'postgres' user for the embedded PostgreSQL: create "
                "one or set ONRAMP_DATABASE_URL"
            ) from exc
    socket_dir = path if len(str(path)) < 80 else _short_socket_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(path, "postgres", "postgres")
        if socket_dir != path:
            _private_socket_dir(socket_dir, owner, bool(run_as))
        password_file = path.parent / PASSWORD_FILE
        fresh = not (path / "PG_VERSION").exists()
        password = _password(password_file, create=fresh or not password_file.exists())
        if fresh:
            _initdb(bindir, path, password, run_as)
        pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(path)]
        status = subprocess.run([*pg_ctl, "status"], capture_output=True)
        if status.returncode != 0:
            # -o goes through pg_ctl's shell: every value in it is shell-quoted.
            options = f"-h '' -k {shlex.quote(str(socket_dir))} -c unix_socket_permissions=0700"
            subprocess.run(
                [*pg_ctl, "-w", "-l", str(path / "server.log"), "-o", options, "start"],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )
        if not fresh and _trusts_local_users(path):
            _require_password(bindir, path, socket_dir, password, run_as)
    except (OSError, LookupError, subprocess.SubprocessError) as exc:
        raise WarehouseError(
            f"the embedded PostgreSQL in {path} did not start: {_last_log_line(path, exc)} "
            "(set ONRAMP_DATABASE_URL to use another server)"
        ) from exc
    return (
        f"postgresql://postgres:{quote(password, safe='')}@/postgres"
        f"?host={quote(str(socket_dir), safe='/')}"
    )


def _private_socket_dir(socket_dir: Path, owner: int, chown: bool) -> None:
    """Create the socket directory 0700, or accept an existing one only if it is a real
    directory of the server's user that nobody else can write to."""
    try:
        socket_dir.mkdir(mode=0o700)
        if chown:
            shutil.chown(socket_dir, "postgres", "postgres")
        socket_dir.chmod(0o700)  # mkdir's mode is filtered by the umask
        return
    except FileExistsError:
        pass
    info = socket_dir.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner or stat.S_IMODE(info.st_mode) & 0o077:
        raise WarehouseError(
            f"the embedded PostgreSQL's socket directory {socket_dir} already exists and is not "
            "a private (0700) directory of the server's user: remove it, or set ONRAMP_HOME to "
            "a shorter path"
        )


def _password(password_file: Path, create: bool) -> str:
    """The superuser's password, made once and kept 0600 (read back on every later start)."""
    if not create:
        return password_file.read_text().strip()
    password = secrets.token_urlsafe(24)
    password_file.unlink(missing_ok=True)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def _initdb(bindir: Path, path: Path, password: str, run_as: list[str]) -> None:
    """A new cluster with SCRAM on every connection; the password goes in through a private
    temporary file (initdb reads --pwfile), never on a command line."""
    fd, pwfile = tempfile.mkstemp(prefix="onramp-pw-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        if run_as:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(path),
                "-U",
                "postgres",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=utf8",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(pwfile)


def _trusts_local_users(path: Path) -> bool:
    """Whether pg_hba.conf (a cluster made before password auth) still trusts anyone."""
    hba = path / "pg_hba.conf"
    return any(
        line.split()[-1] == "trust"
        for line in hba.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def _require_password(
    bindir: Path, path: Path, socket_dir: Path, password: str, run_as: list[str]
) -> None:
    """Move a trust cluster to SCRAM: set the password while trust still lets us in, rewrite
    pg_hba.conf, reload."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("set password_encryption = 'scram-sha-256'")
        conn.execute(sql.SQL("alter role postgres password {}").format(sql.Literal(password)))
    hba = path / "pg_hba.conf"
    lines = [
        re.sub(r"\btrust\s*$", "scram-sha-256", line) if not line.lstrip().startswith("#") else line
        for line in hba.read_text().splitlines()
    ]
    hba.write_text("\n".join(lines) + "\n")
    subprocess.run(
        [*run_as, str(bindir / "pg_ctl"), "-D", str(path), "reload"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    log.info("embedded PostgreSQL in %s now requires a password", path)


def _short_socket_dir(path: Path) -> Path:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"onramp-pg-{digest}"


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy wants the driver named: postgresql:// -> postgresql+psycopg://."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class WarehouseTimeout(WarehouseError):
    """A connection, lock wait or statement ran past its configured timeout."""


@dataclass(frozen=True)
class DbTimeouts:
    """Timeouts every warehouse connection gets (ours and dbt's), from the environment.

    Without them a dead network or a run holding a lock leaves a sync or `--wait` hanging for
    ever; with them it stops with one line naming the setting to raise. 0 turns one off.
    """

    connect_s: int = 10
    lock_s: float = 300.0  # also how long `onramp sync --wait` waits for a running sync
    statement_s: float = 3600.0
    keepalives_idle_s: int = 60
    keepalives_interval_s: int = 10
    keepalives_count: int = 5

    @classmethod
    def from_env(cls) -> DbTimeouts:
        return cls(
            connect_s=int(_seconds("ONRAMP_DB_CONNECT_TIMEOUT_S", cls.connect_s)),
            lock_s=_seconds("ONRAMP_DB_LOCK_TIMEOUT_S", cls.lock_s),
            statement_s=_seconds("ONRAMP_DB_STATEMENT_TIMEOUT_S", cls.statement_s),
            keepalives_idle_s=int(_seconds("ONRAMP_DB_KEEPALIVES_IDLE_S", cls.keepalives_idle_s)),
        )

    def options(self) -> str:
        """Server settings for libpq's `options` (PGOPTIONS for dbt), in milliseconds."""
        return (
            f"-c lock_timeout={int(self.lock_s * 1000)} "
            f"-c statement_timeout={int(self.statement_s * 1000)}"
        )

    def connect_args(self, url: str) -> dict[str, Any]:
        """psycopg connect() arguments; `options` given in the URL come after ours and win."""
        own = parse_qs(urlparse(url).query).get("options", [""])[-1]
        args: dict[str, Any] = {
            "options": f"{self.options()} {own}".strip(),
            "keepalives": 1,
            "keepalives_idle": self.keepalives_idle_s,
            "keepalives_interval": self.keepalives_interval_s,
            "keepalives_count": self.keepalives_count,
        }
        if self.connect_s:
            args["connect_timeout"] = self.connect_s
        return args


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise OnrampError(f"{name} must be a number of seconds (0: no limit), got {raw!r}")
    return value


def _fmt(seconds: float) -> str:
    return f"{seconds:g}s"


def _timeout_line(exc: BaseException, timeouts: DbTimeouts) -> str | None:
    """One line naming the timeout that fired, or None for any other error."""
    sqlstate = getattr(exc, "sqlstate", None)
    text = str(exc)
    if sqlstate == "55P03" or "lock timeout" in text:
        return (
            f"gave up waiting for a lock after {_fmt(timeouts.lock_s)} "
            "(ONRAMP_DB_LOCK_TIMEOUT_S): another run holds it; retry later or raise the setting"
        )
    if sqlstate == "57014" and "statement timeout" in text:
        return (
            f"a warehouse statement ran longer than {_fmt(timeouts.statement_s)} "
            "(ONRAMP_DB_STATEMENT_TIMEOUT_S) and was cancelled; raise the setting if expected"
        )
    if "timeout expired" in text:
        return (
            f"no answer from the warehouse within {_fmt(timeouts.connect_s)} "
            "(ONRAMP_DB_CONNECT_TIMEOUT_S): check the host, the network or raise the setting"
        )
    return None


@functools.cache
def _engine_for(url: str, timeouts: DbTimeouts) -> sa.Engine:
    # hide_parameters: bound values (addresses, payloads) never appear in an error's text.
    engine = sa.create_engine(
        sqlalchemy_url(url),
        pool_pre_ping=True,
        future=True,
        hide_parameters=True,
        connect_args=timeouts.connect_args(url),
    )

    @sa.event.listens_for(engine, "handle_error")
    def _name_the_timeout(ctx: sa.engine.ExceptionContext) -> None:
        line = _timeout_line(ctx.original_exception, timeouts)
        if line is not None:
            raise WarehouseTimeout(line) from ctx.original_exception

    return engine


def get_engine(settings: Settings | None = None) -> sa.Engine:
    """The one engine for this process, warehouse and timeouts."""
    url = database_url(settings)
    engine = _engine_for(url, DbTimeouts.from_env())
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
    plus libpq's own PG* variables for the URL's TLS and other connection settings.

    With ONRAMP_WAREHOUSE=spark dbt runs on the profile's `spark` output (dbt-spark's session
    method, in process): no PostgreSQL is started for it, the state database is not dbt's.
    """
    settings = settings or Settings.from_env()
    if settings.warehouse == "spark":
        return spark_dbt_env()
    url = database_url(settings)
    parts = connection_parts(url)
    return {
        "ONRAMP_DBT_TARGET": "default",
        "ONRAMP_PG_HOST": parts["host"],
        "ONRAMP_PG_PORT": parts["port"],
        "ONRAMP_PG_USER": parts["user"],
        "ONRAMP_PG_PASSWORD": parts["password"],
        "ONRAMP_PG_DBNAME": parts["dbname"],
        "ONRAMP_DBT_THREADS": str(dbt_threads()),
        **libpq_env(url),
        **_dbt_timeouts(url),
    }


def spark_dbt_env() -> dict[str, str]:
    """The profile's `spark` output; ONRAMP_PG_HOST only so the unused postgres output renders."""
    return {
        "ONRAMP_DBT_TARGET": "spark",
        "ONRAMP_PG_HOST": os.environ.get("ONRAMP_PG_HOST", "localhost"),
        "ONRAMP_DBT_THREADS": str(dbt_threads()),
    }


def _dbt_timeouts(url: str) -> dict[str, str]:
    """The same timeouts for dbt: lock/statement through PGOPTIONS (libpq reads it), connect and
    keepalives through the profile (profiles.yml reads ONRAMP_PG_CONNECT_TIMEOUT and
    ONRAMP_PG_KEEPALIVES_IDLE)."""
    timeouts = DbTimeouts.from_env()
    own = parse_qs(urlparse(url).query).get("options", [""])[-1]
    return {
        "PGOPTIONS": f"{timeouts.options()} {own}".strip(),
        "ONRAMP_PG_CONNECT_TIMEOUT": str(timeouts.connect_s),
        "ONRAMP_PG_KEEPALIVES_IDLE": str(timeouts.keepalives_idle_s),
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
