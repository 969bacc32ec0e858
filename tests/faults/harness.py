"""The fault tests' own infrastructure: a private Redis, a private Postgres, an S3 proxy that can be switched
off, a real API (uvicorn in a thread) and real Celery workers, all on free loopback ports in temp folders.

Never the machine's shared Postgres or Redis: these get stopped, killed and restarted on purpose.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.1) -> float:
    """Poll `condition` until it holds; returns the seconds it took. AssertionError after `timeout_s`."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if condition():
                return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(every_s)


def binary(name: str) -> str | None:
    """A server binary on PATH or in Debian's PostgreSQL folders."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


# --- Redis ----------------------------------------------------------------------------------------------------


class PrivateRedis:
    """redis-server on a free port, nothing persisted: a restart comes back empty, as after a crash."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = binary("redis-server")
        assert server, "redis-server not found"
        args = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: bool(client.ping()), 15, "redis-server start")
        client.close()

    def kill(self) -> None:
        """SIGKILL: every message in it is lost."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None


# --- Postgres ---------------------------------------------------------------------------------------------------


class PrivatePostgres:
    """initdb + pg_ctl on a free port in a temp folder (owned by the `postgres` user when run as root:
    Postgres refuses to run as root)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="consingan-faults-pg-"))
        self.data, self.port = self.folder / "data", free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/consingan"

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(command)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"

    def init(self) -> None:
        initdb = binary("initdb")
        assert initdb, "initdb not found"
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()
        from sqlalchemy import create_engine, text

        admin = create_engine(self.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE consingan"))
        admin.dispose()

    def start(self) -> None:
        pg_ctl = binary("pg_ctl")
        assert pg_ctl, "pg_ctl not found"
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        # fsync off is safe here: the tests crash the server, never the machine. Commits stay synchronous: an
        # immediate stop must not lose what the service was told was committed.
        options += " -c full_page_writes=off -c max_connections=200"
        self._run(
            pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "pg.log"), "-w", "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: like a crash (no shutdown checkpoint; clients' connections die at once)."""
        pg_ctl = binary("pg_ctl")
        assert pg_ctl
        self._run(pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


# --- a TCP proxy in front of the S3 server ---------------------------------------------------------------------


class SwitchableProxy:
    """Loopback TCP proxy to `target`. `refuse()`: connections are refused (and open ones reset);
    `blackhole()`: connections are accepted and bytes swallowed, nothing ever answers; `restore()`: normal.
    `on_upstream(chunk) -> None` sees every client->server chunk before it is forwarded (and may block)."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self.mode = "pass"
        self.on_upstream: Callable[[bytes], None] | None = None
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.stopped = False
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.add(sock)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        if self.mode == "blackhole":
            self._swallow(client)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            self._reset(client)
            return
        upstream.settimeout(None)
        self._track(upstream)
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _swallow(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass

    def _pump(self, source: socket.socket, sink: socket.socket, to_upstream: bool) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if self.mode == "blackhole":
                    continue  # swallowed: the other side waits for an answer that never comes
                if to_upstream and self.on_upstream is not None:
                    self.on_upstream(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            self._reset(sink)
            self._reset(source)

    def _reset(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        with contextlib.suppress(OSError):
            sock.close()
        with self.lock:
            self.sockets.discard(sock)

    def _reset_all(self) -> None:
        with self.lock:
            open_sockets = list(self.sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self._reset(sock)

    def _close_listener(self) -> None:
        if self.listener is not None:
            # shutdown() first: a thread blocked in accept() keeps a closed socket listening on Linux
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None

    def refuse(self) -> None:
        self.mode = "refuse"
        self._close_listener()
        self._reset_all()

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def restore(self) -> None:
        previous, self.mode = self.mode, "pass"
        if previous == "blackhole":
            self._reset_all()  # connections that swallowed bytes are out of step: clients reconnect
        if self.listener is None:
            self._listen()

    def close(self) -> None:
        self._close_listener()
        self._reset_all()


# --- the API in a thread, the workers in processes --------------------------------------------------------------


class ApiServer:
    """The real app under uvicorn on a free port, in a thread of the test process."""

    def __init__(self, settings: Any) -> None:
        import uvicorn

        from api.app import create_app

        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            # longer than any outage a test sits through, so a client's idle keep-alive connection is not
            # closed by the server at the instant the client reuses it (uvicorn's 5 s default raced the
            # first request after a 5 s Postgres outage: a connection reset, not the API's answer)
            timeout_keep_alive=60,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "uvicorn start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_celery(env: dict[str, str], args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_ready(process: subprocess.Popen[bytes], log_path: Path) -> None:
    def ready() -> bool:
        assert process.poll() is None, log_path.read_text()[-3000:]
        return b" ready." in log_path.read_bytes()

    wait_for(ready, 120, f"celery worker ready ({log_path.name})", every_s=0.2)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    started = time.monotonic()
    yield lambda: time.monotonic() - started
