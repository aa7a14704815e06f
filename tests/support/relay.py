"""A remote relay on 127.0.0.1: it answers after a round trip, throttles, and drops some
connections in the middle of a message.

An asyncio SMTP server (stdlib only) that offers PIPELINING and answers the commands it has
read together, `delay` seconds after reading them, as a relay in another data centre does: a
message costs two round trips (the envelope, then the final dot). Options:

- `throttle_rate` (messages per second over the last second, all connections together): above
  it, MAIL gets `throttle_reply` (by default SES's "454 4.7.0 Throttling failure: Maximum
  sending rate exceeded"); a 421 reply also closes the connection.
- `drop_every`: every Nth message, the connection is reset after part of its body (before the
  final dot: the message was never taken).
- `reject`: addresses answered 550 at RCPT.

Used by the tests in a thread (`Relay(...).start()`) and by the benchmarks as a process of
its own (`python tests/support/relay.py --port P --delay 0.02`), so that the sink's work does
not share the sender's interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import struct
import sys
import threading
import time


class Relay:
    def __init__(
        self,
        *,
        delay: float = 0.0,
        throttle_rate: float | None = None,
        throttle_reply: str = "454 4.7.0 Throttling failure: Maximum sending rate exceeded.",
        drop_every: int = 0,
        reject: frozenset[str] = frozenset(),
        port: int = 0,
        quiet: bool = False,
    ) -> None:
        self.delay = delay
        self.throttle_rate = throttle_rate
        self.throttle_reply = throttle_reply
        self.drop_every = drop_every
        self.reject = reject
        self.port = port
        self.host = "127.0.0.1"
        self.quiet = quiet
        self.lock = threading.Lock()
        # (time.time() of the final dot, recipient, the sender's EHLO name)
        self.received: list[tuple[float, str, str]] = []
        self.throttled = 0
        self.dropped = 0
        self.connections = 0
        self.open_now = 0
        self.open_max = 0
        self._started: collections.deque[float] = collections.deque()
        self._messages = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # -- what it saw --------------------------------------------------------------------

    def rcpts(self) -> list[str]:
        with self.lock:
            return [r for _, r, _ in self.received]

    def counts(self) -> collections.Counter[str]:
        return collections.Counter(self.rcpts())

    def times(self) -> list[float]:
        with self.lock:
            return [t for t, _, _ in self.received]

    def per_sender(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(h for _, _, h in self.received)

    # -- running ------------------------------------------------------------------------

    def start(self) -> Relay:
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the relay did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._server is not None:
            # Every connection closed before the loop ends: none is left to the garbage
            # collector (a ResourceWarning, an error under filterwarnings = error).
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for writer in list(self._writers):
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        await self._server.wait_closed()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._session, self.host, self.port, backlog=256)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def serve_forever(self) -> None:
        """In a process of its own (the benchmarks): until killed."""
        self._run()

    # -- one connection -----------------------------------------------------------------

    def _too_fast(self) -> bool:
        if self.throttle_rate is None:
            return False
        now = time.monotonic()
        with self.lock:
            while self._started and now - self._started[0] > 1.0:
                self._started.popleft()
            if len(self._started) >= self.throttle_rate:
                self.throttled += 1
                return True
            self._started.append(now)
            return False

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            self.connections += 1
            self.open_now += 1
            self.open_max = max(self.open_max, self.open_now)
        self._writers.add(writer)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            with self.lock:
                self.open_now -= 1
            self._writers.discard(writer)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _answer(self, writer: asyncio.StreamWriter, lines: list[str]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        writer.write("".join(f"{line}\r\n" for line in lines).encode())
        await writer.drain()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._answer(writer, ["220 relay ESMTP"])
        rcpts: list[str] = []
        helo = ""
        closing = False
        while not closing:
            first = await reader.readline()
            if not first:
                return
            batch = [first]
            # Pipelined commands arrive together: answer them together, after one delay.
            while (
                b"\n" in reader._buffer  # type: ignore[attr-defined]  # already read
                and not batch[-1].upper().startswith(b"DATA")
            ):
                batch.append(await reader.readline())
            replies: list[str] = []
            data = False
            for raw in batch:
                line = raw.decode("utf-8", "replace").strip()
                verb = line[:4].upper()
                if verb in ("EHLO", "HELO"):
                    helo = line[5:].strip()
                    replies += ["250-relay", "250-PIPELINING", "250-SIZE 10240000", "250 8BITMIME"]
                elif verb == "MAIL":
                    rcpts = []
                    if self._too_fast():
                        replies.append(self.throttle_reply)
                        closing = self.throttle_reply.startswith("421")
                        if closing:
                            break
                    else:
                        replies.append("250 2.1.0 OK")
                elif verb == "RCPT":
                    address = line.split(":", 1)[1].strip().strip("<>") if ":" in line else ""
                    if replies and replies[-1].startswith("4"):
                        replies.append("503 5.5.1 no sender")
                    elif address in self.reject:
                        replies.append("550 5.1.1 no such user")
                    else:
                        rcpts.append(address)
                        replies.append("250 2.1.5 OK")
                elif verb == "DATA":
                    if rcpts:
                        replies.append("354 go ahead")
                        data = True
                    else:
                        replies.append("554 5.5.1 no valid recipients")
                elif verb == "RSET":
                    rcpts = []
                    replies.append("250 2.0.0 OK")
                elif verb == "NOOP":
                    replies.append("250 2.0.0 OK")
                elif verb == "QUIT":
                    replies.append("221 2.0.0 bye")
                    closing = True
                else:
                    replies.append("502 5.5.2 not implemented")
            await self._answer(writer, replies)
            if data and not closing:
                if not await self._body(reader, writer, rcpts, helo):
                    return
                rcpts = []

    async def _body(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rcpts: list[str],
        helo: str,
    ) -> bool:
        with self.lock:
            self._messages += 1
            drop = bool(self.drop_every) and self._messages % self.drop_every == 0
        if drop:
            await reader.readline()  # a little of the body, then a reset: never the final dot
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with self.lock:
                self.dropped += 1
            writer.transport.abort()
            return False
        while True:
            line = await reader.readline()
            if not line:
                return False
            if line in (b".\r\n", b".\n"):
                break
        now = time.time()
        with self.lock:
            self.received.extend((now, r, helo) for r in rcpts)
        await self._answer(writer, ["250 2.0.0 OK queued"])
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    relay = Relay(delay=args.delay, port=args.port, quiet=True)
    print("ready", flush=True, file=sys.stderr)
    relay.serve_forever()


if __name__ == "__main__":
    main()
