"""The embedded PostgreSQL fallback (initdb + pg_ctl from the machine, used where pgserver has no
wheel): password authentication only, a private socket directory, and paths with spaces."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from onramp import warehouse

pytestmark = pytest.mark.skipif(
    warehouse._find_pg_bin() is None, reason="no PostgreSQL binaries (pg_ctl/initdb) here"
)


def _stop(pgdata: Path) -> None:
    bindir = warehouse._find_pg_bin()
    if bindir is None or not (pgdata / "postmaster.pid").exists():
        return
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*run_as, str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"],
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def roomy_tmp() -> Iterator[Path]:
    """A temp folder the postgres user may traverse (pytest's are 0700 root when run as root)."""
    base = Path(tempfile.mkdtemp(prefix="onramp-fallback-"))
    base.chmod(0o755)
    started: list[Path] = []
    yield base
    for pgdata in base.rglob("PG_VERSION"):
        started.append(pgdata.parent)
    for pgdata in started:
        _stop(pgdata)
    shutil.rmtree(base, ignore_errors=True)


def _expected_owner() -> int:
    if os.geteuid() == 0:
        import pwd

        return pwd.getpwnam("postgres").pw_uid
    return os.geteuid()


def test_fallback_starts_with_a_space_in_onramp_home_and_requires_a_password(roomy_tmp):
    home = roomy_tmp / "onramp home"
    home.mkdir()
    home.chmod(0o755)
    pgdata = home / "postgres"

    url = warehouse._start_with_system_binaries(pgdata)

    with psycopg.connect(url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    hba = [
        line.split()
        for line in (pgdata / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert hba and all(fields[-1] != "trust" for fields in hba), hba
    parts = warehouse.connection_parts(url)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=parts["host"], user="postgres", dbname="postgres", password="")
    password_file = home / warehouse.PASSWORD_FILE
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600

    # A second start reuses the running server and the same password.
    assert warehouse._start_with_system_binaries(pgdata) == url


def test_socket_dir_outside_the_data_folder_is_private(roomy_tmp):
    deep = roomy_tmp / ("a-rather-long-folder-name-" * 3) / "onramp home"
    deep.mkdir(parents=True)
    for folder in (deep, deep.parent):
        folder.chmod(0o755)
    pgdata = deep / "postgres"
    socket_dir = warehouse._short_socket_dir(pgdata)
    shutil.rmtree(socket_dir, ignore_errors=True)

    try:
        url = warehouse._start_with_system_binaries(pgdata)
        info = socket_dir.stat()
        assert warehouse.connection_parts(url)["host"] == str(socket_dir)
        assert stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == _expected_owner()
        with psycopg.connect(url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        _stop(pgdata)
        shutil.rmtree(socket_dir, ignore_errors=True)


def test_a_socket_dir_someone_else_prepared_is_refused(roomy_tmp):
    """Another local user can create /tmp/onramp-pg-<hash> first; we must not use it."""
    deep = roomy_tmp / ("another-rather-long-folder-name-" * 3)
    deep.mkdir(parents=True)
    deep.chmod(0o755)
    pgdata = deep / "postgres"
    socket_dir = warehouse._short_socket_dir(pgdata)
    shutil.rmtree(socket_dir, ignore_errors=True)
    socket_dir.mkdir()
    socket_dir.chmod(0o777)  # world-writable: anyone could swap the socket
    try:
        with pytest.raises(warehouse.WarehouseError, match="socket"):
            warehouse._start_with_system_binaries(pgdata)
        assert not (pgdata / "postmaster.pid").exists()
    finally:
        _stop(pgdata)
        shutil.rmtree(socket_dir, ignore_errors=True)


def test_a_cluster_made_with_trust_auth_is_moved_to_passwords(roomy_tmp):
    """Clusters created before this change trusted every local user: the next start fixes it."""
    home = roomy_tmp / "old home"
    home.mkdir()
    home.chmod(0o755)
    pgdata = home / "postgres"
    pgdata.mkdir()
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(pgdata, "postgres", "postgres")
    bindir = warehouse._find_pg_bin()
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )

    url = warehouse._start_with_system_binaries(pgdata)

    assert not warehouse._trusts_local_users(pgdata)
    with psycopg.connect(url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    parts = warehouse.connection_parts(url)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=parts["host"], user="postgres", dbname="postgres", password="")
