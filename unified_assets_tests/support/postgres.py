"""A throw-away PostgreSQL server from the system's packages, for the production-instance test,
the instance bench, and trying deploy/dagster.yaml locally.

It runs on 127.0.0.1 with a free port, from a temporary folder, with password authentication,
and is stopped (and its folder removed) on exit. PostgreSQL refuses to run as root, so under root
the server runs as the `postgres` user (or `nobody`) through `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

HINT = "apt-get install postgresql"
SUPERUSER = "postgres"
ROLE = "dagster"
"""The login Dagster uses: owns its database, is not a superuser."""


def find_bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries: Debian's /usr/lib/postgresql/<v>/bin, else PATH."""

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", Path(path).parent.name))

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all((Path(candidate) / p).exists() for p in ("initdb", "pg_ctl", "postgres", "psql")):
            return Path(candidate)
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; use as a context manager."""

    def __init__(self, bin_dir: Path, durable: bool = False):
        self.bin_dir = Path(bin_dir)
        self.durable = durable
        self.host = "127.0.0.1"
        self.port = 0
        self.password = secrets.token_hex(12)
        self.root: Path | None = None
        self.os_user: str | None = None
        if os.geteuid() == 0:
            names = {p.pw_name for p in pwd.getpwall()}
            self.os_user = "postgres" if "postgres" in names else "nobody"

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def _as_owner(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", self.os_user, "--", *args] if self.os_user else args

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self._as_owner(args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr}{done.stdout}"
                f"{self.server_log()}"
            )
        return done

    def server_log(self) -> str:
        if self.root is None or not self.log_file.exists():
            return ""
        return "\n--- server log ---\n" + self.log_file.read_text()[-3000:]

    def start(self) -> PostgresServer:
        """initdb, then start on a free loopback port; waits until it accepts connections."""
        # Under root, in /tmp itself (not a root-only pytest folder): the server's user reaches it.
        parent = "/tmp" if self.os_user else None
        self.root = Path(tempfile.mkdtemp(prefix="unified-assets-pg-", dir=parent))
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run([
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
            "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "-N",
        ])
        pwfile.unlink()
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 100",
        ]
        if not self.durable:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")
        for attempt in range(3):
            self.port = free_port()
            try:
                self._run([
                    str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l",
                    str(self.log_file), "-o", f"-p {self.port}", "-w", "-t", "60", "start",
                ])
                break
            except RuntimeError:
                if attempt == 2 or "address already in use" not in self.server_log().lower():
                    raise
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'", user=SUPERUSER)
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown; killed if it does not stop) and remove its folder."""
        if self.root is None:
            return
        try:
            pid_file = self.data_dir / "postmaster.pid"
            if pid_file.exists():
                try:
                    self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir),
                               "-m", "fast", "-w", "-t", "30", "stop"])
                except (RuntimeError, subprocess.TimeoutExpired):
                    if pid_file.exists():
                        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def psql(self, sql: str, database: str = "postgres", user: str = ROLE) -> list[list[str]]:
        """Rows of one SQL statement, through the psql client over TCP with the password."""
        uri = (f"postgresql://{quote(user, safe='')}:{quote(self.password, safe='')}@"
               f"{self.host}:{self.port}/{quote(database, safe='')}?connect_timeout=10")
        done = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-d", uri, "-c", sql],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if done.returncode:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def create_database(self, name: str) -> str:
        """A new empty database owned by the Dagster role."""
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE}", user=SUPERUSER)
        return name

    def dagster_env(self, database: str) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads its connection from."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": ROLE,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": database,
        }
