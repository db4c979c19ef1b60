"""A real ``authenticity serve`` process, killed with SIGKILL in the middle of a registration stream.

After a restart ``authenticity log check`` passes, every record has exactly one log leaf and its
perceptual rows (no half-written registration), every 201 the clients saw is in the registry,
and registrations continue at the next leaf index. Runs on a SQLite file and on PostgreSQL.
Also: the real server refuses an oversized upload before the client has sent it, and
``serve`` fails with one error line when it cannot start.
"""

from __future__ import annotations

import os
import select as io_select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from authenticity.config import Settings
from authenticity.provenance.keys import generate_signing_key
from authenticity.provenance.manifest import PerceptualEntry
from authenticity.registry import db, log
from authenticity.registry.apikeys import Role
from authenticity.registry.models import LogLeaf, PerceptualHash, Record
from authenticity.registry.store import open_registry

from .test_api import DEVICE, bearer, fake_digest, new_key, signed_body

pytestmark = pytest.mark.slow
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "authenticity", *args]
    return subprocess.run(command, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)  # fmt: skip


class Server:
    """``authenticity serve --no-detector`` on a free port, with its output in a log file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path, self.url = log_path, ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "authenticity", "serve", "--port", str(port),
                                          "--no-detector", "--log-level", "warning"],
                                         env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not become healthy:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _read_reply(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (it answers 413 with Connection: close)."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass  # closed with our unread bytes in its buffer: what arrived before the reset is the reply
    return data


def _body(device: Any, n: int) -> dict[str, Any]:
    return signed_body(
        device, digest=fake_digest(10_000 + n), perceptual=(PerceptualEntry(hash=f"{n:064x}", quality=90),)
    )


def test_sigkill_during_registrations_then_restart_keeps_the_log_whole(settings: Settings, tmp_path: Path) -> None:
    admin = new_key(settings, "admin-1", Role.ADMIN)
    server = Server(tmp_path / "server.log")
    server.start()
    try:
        device = generate_signing_key()
        r = httpx.post(f"{server.url}/v1/signers", headers=bearer(admin),
                       json={"name": DEVICE, "public_key": device.public_key.pem()}, timeout=30)  # fmt: skip
        assert r.status_code == 201, r.text
        device_key = new_key(settings, "device-1", Role.SIGNER, DEVICE)
        outcomes: dict[int, str] = {}
        stop = threading.Event()
        counter = iter(range(1, 1_000_000))
        lock = threading.Lock()

        def send() -> None:
            with httpx.Client(timeout=15) as client:
                while not stop.is_set():
                    with lock:
                        n = next(counter)
                    try:
                        resp = client.post(
                            f"{server.url}/v1/records", headers=bearer(device_key), json=_body(device, n)
                        )
                        outcomes[n] = str(resp.status_code)
                    except httpx.HTTPError as exc:
                        outcomes[n] = type(exc).__name__
                        time.sleep(0.05)

        threads = [threading.Thread(target=send) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(v == "201" for v in list(outcomes.values())) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()  # mid-stream: three clients are sending
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        accepted = {n for n, v in outcomes.items() if v == "201"}
        assert len(accepted) >= 30, outcomes
        assert set(outcomes.values()) <= {"201", "ConnectError", "ReadError", "RemoteProtocolError", "WriteError"}

        server.start()
        after = []
        for n in range(900_000, 900_003):
            resp = httpx.post(f"{server.url}/v1/records", headers=bearer(device_key), json=_body(device, n), timeout=30)
            assert resp.status_code == 201, resp.text
            after.append(resp.json()["leaf_index"])
    finally:
        server.stop()

    check = _cli("log", "check")
    assert check.returncode == 0 and "log OK" in check.stdout, check.stdout + check.stderr
    with db.session_scope(open_registry(settings), read_only=True) as session:
        records = session.scalar(select(func.count()).select_from(Record))
        leaves = session.scalars(select(LogLeaf.leaf_index).order_by(LogLeaf.leaf_index)).all()
        orphans = session.scalar(select(func.count()).select_from(Record).outerjoin(LogLeaf).where(
            LogLeaf.record_id.is_(None)))  # fmt: skip
        hashes = session.scalar(select(func.count()).select_from(PerceptualHash))
        digests = set(session.scalars(select(Record.content_digest)).all())
        size = log.tree_size(session)
    assert orphans == 0 and list(leaves) == list(range(size)) and records == size == hashes
    assert {fake_digest(10_000 + n) for n in accepted} <= digests  # every acknowledged registration survived
    assert after == [size - 3, size - 2, size - 1]  # and registration went on where the log stopped


@sqlite_only
def test_real_server_refuses_an_oversized_upload_before_it_is_sent(settings: Settings, tmp_path: Path) -> None:
    reviewer = new_key(settings, "reviewer-1", Role.REVIEWER)
    server = Server(tmp_path / "server.log")
    server.start()
    host, port = server.url.removeprefix("http://").split(":")
    head = (f"POST /v1/verify HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {reviewer}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n")  # fmt: skip
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n\xff\xd8\xff\xe0' + bytes(8188)
    try:
        with socket.create_connection((host, int(port)), timeout=30) as s:  # declared: refused from the headers
            s.sendall((head + "Content-Length: 10000000000\r\n\r\n").encode() + part)
            reply = _read_reply(s)
        assert reply.startswith(b"HTTP/1.1 413") and b'"upload.too_large"' in reply, reply
        sent = 0
        with socket.create_connection((host, int(port)), timeout=30) as s:  # chunked: refused while streaming
            s.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"%x\r\n" % len(part) + part + b"\r\n")
            chunk, reply = b"%x\r\n" % (1 << 20) + bytes(1 << 20) + b"\r\n", b""
            try:
                while sent < 400 << 20 and not reply:
                    s.sendall(chunk)
                    sent += 1 << 20
                    if io_select.select([s], [], [], 0)[0]:
                        reply = _read_reply(s)  # answered while we are still sending
            except OSError:
                pass  # the server answered and closed the connection
            reply = reply or _read_reply(s)
        assert reply.startswith(b"HTTP/1.1 413") and b'"upload.too_large"' in reply, reply
        assert sent < 120 << 20  # the default limit is 50 MiB; socket buffers account for the rest
    finally:
        server.stop()


@sqlite_only
def test_serve_refuses_to_start_with_bad_arguments_or_no_database(settings: Settings) -> None:
    bad = _cli("serve", "--workers", "0")
    assert bad.returncode == 2 and bad.stderr.startswith("error: usage.serve.invalid: "), bad.stderr
    # Regressions: uvicorn raised a KeyError traceback for an unknown level, and an unresolvable host
    # exited 3 ("registry unavailable") after announcing "serving on ...".
    bad = _cli("serve", "--no-detector", "--log-level", "bogus")
    assert bad.returncode == 2 and bad.stderr.startswith("error: usage.serve.invalid: "), bad.stderr
    bad = _cli("serve", "--no-detector", "--host", "no.such.host.invalid")
    assert bad.returncode == 2 and bad.stderr.startswith("error: usage.serve.host: "), bad.stderr
    assert "Traceback" not in bad.stderr and "serving on" not in bad.stderr
    down = _cli("serve", env={"AUTHENTICITY_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
                              "AUTHENTICITY_DB_TIMEOUT": "1"})  # fmt: skip
    assert down.returncode == 3, down.stderr
    assert next(line for line in down.stderr.splitlines() if line.strip()).startswith(
        "error: registry.database.unreachable: "
    )
    assert "Traceback" not in down.stderr
