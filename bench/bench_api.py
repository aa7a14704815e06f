"""The REST API's request rate for a client list against the panel's HTML client list.

    python bench/bench_api.py [--clients 5000] [--requests 600] [--threads 4] [--rounds 3]

A temp SQLite database gets an owner with --clients clients (bulk-inserted, each with a tag);
one `python -m mailctl web` (uvicorn) serves it. Keep-alive HTTP clients in threads then ask,
the same number of times and interleaved over a few rounds (the best round of each counts, so
that other load on the machine skews both alike):

(a) GET /clients, the panel's first page of 25 clients, logged in as the owner (session
    cookie), rendered HTML;
(b) GET /api/v1/clients?limit=25, the same 25 clients as JSON, with the owner's API key.

It prints requests per second of each and the ratio API / HTML. No target: the figure says what
the key check (a keyed hash and a row per call) and JSON cost next to a session and a template.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path

PASSWORD = "bench-password-1"
OWNER = "owner@example.com"
PAGE = 25  # web/views/clients.py PER_PAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailctl", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"mailctl {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def seed(env: dict[str, str], clients: int) -> str:
    """The owner with `clients` tagged clients; returns the owner's API key."""
    from sqlalchemy import create_engine, insert, select

    from mailctl.models import Client, ClientTag, Tag, User

    run(env, "init", "--admin", "admin@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    run(env, "user", "add", OWNER, "--password-stdin", stdin=PASSWORD + "\n")
    engine = create_engine(env["MAILCTL_DATABASE_URL"])
    with engine.begin() as conn:
        owner = conn.execute(select(User.id).where(User.email == OWNER)).scalar_one()
        tag = conn.execute(
            insert(Tag).values(owner_id=owner, name="news", name_key="news", is_public=False)
        ).inserted_primary_key[0]
        conn.execute(
            insert(Client),
            [
                {
                    "owner_id": owner,
                    "email": f"client{i:06d}@example.com",
                    "email_key": f"client{i:06d}@example.com",
                    "full_name": f"Client {i}",
                    "comment": "",
                    "attrs": {},
                }
                for i in range(clients)
            ],
        )
        ids = conn.execute(select(Client.id).where(Client.owner_id == owner)).scalars().all()
        conn.execute(insert(ClientTag), [{"client_id": i, "tag_id": tag} for i in ids])
    engine.dispose()
    return run(env, "--as", OWNER, "apikey", "add", "--name", "bench").strip()


@contextmanager
def server(env: dict[str, str], log: Path) -> Iterator[int]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailctl", "web", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the panel exited:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the panel did not come up") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_in(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/login")
        page = conn.getresponse()
        body = page.read().decode()
        jar = SimpleCookie(page.headers.get("Set-Cookie", ""))
        token = re.search(r'name="csrf_token" value="([^"]+)"', body)
        assert token, "no CSRF field on /login"
        cookie = "; ".join(f"{k}={v.value}" for k, v in jar.items())
        form = urllib.parse.urlencode(
            {"csrf_token": token.group(1), "email": OWNER, "password": PASSWORD, "next": ""}
        )
        conn.request(
            "POST",
            "/login",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 303, f"login failed with {answer.status}"
        jar = SimpleCookie(answer.headers.get("Set-Cookie", ""))
        return "; ".join(f"{k}={v.value}" for k, v in jar.items())
    finally:
        conn.close()


def measure(
    port: int, path: str, headers: dict[str, str], *, requests: int, threads: int, expect: bytes
) -> tuple[float, float]:
    """(requests per second, median ms) of `requests` GETs over keep-alive connections."""
    per_thread = max(1, requests // threads)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        try:
            for _ in range(per_thread):
                t0 = time.perf_counter()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                mine.append(time.perf_counter() - t0)
                if response.status != 200 or expect not in body:
                    failures.append(f"{path}: HTTP {response.status}")
                    return
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    began = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(failures[0])
    return len(latencies) / elapsed, statistics.median(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailctl-bench-api-") as tmp:
        data = Path(tmp)
        (data / "mailctl.toml").write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCTL_")}
        env.update(
            MAILCTL_CONFIG=str(data / "mailctl.toml"),
            MAILCTL_GENERAL_DATA_DIR=str(data),
            MAILCTL_DATABASE_URL=f"sqlite:///{data / 'mailctl.db'}",
            MAILCTL_API_RATE_LIMIT="100000000",
            MAILCTL_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        began = time.perf_counter()
        key = seed(env, args.clients)
        print(f"seeded {args.clients} clients in {time.perf_counter() - began:.1f}s")
        with server(env, data / "web.log") as port:
            cookie = log_in(port)
            cases = {
                "HTML /clients (25 a page)": (
                    "/clients",
                    {"Cookie": cookie},
                    b"client000000@example.com",
                ),
                "API /api/v1/clients?limit=25": (
                    f"/api/v1/clients?limit={PAGE}",
                    {"Authorization": f"Bearer {key}"},
                    b"client000000@example.com",
                ),
            }
            for path, headers, expect in cases.values():  # warm-up
                measure(port, path, headers, requests=40, threads=1, expect=expect)
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.rounds):
                for label, (path, headers, expect) in cases.items():
                    got = measure(
                        port,
                        path,
                        headers,
                        requests=args.requests,
                        threads=args.threads,
                        expect=expect,
                    )
                    if label not in best or got[0] > best[label][0]:
                        best[label] = got
    for label, (rps, p50) in best.items():
        print(f"{label:32} {rps:8.1f} req/s   median {p50:6.1f} ms")
    html, api = (best[label][0] for label in cases)
    print(f"ratio API / HTML: {api / html:.2f}")


if __name__ == "__main__":
    main()
