"""A deadline for a whole SMTP attempt, whatever the server does between bytes."""

from __future__ import annotations

import socket
import threading
import time


class Watchdog:
    """Cuts a connection whose attempt outlives its deadline.

    smtplib's timeout is per read: a server dripping one byte at a time never trips it. One
    thread per transport shuts the socket down when the armed deadline passes, which wakes
    the blocked read with an error.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._sock: socket.socket | None = None
        self.fired = False
        self._closed = False
        self._wake_at: float | None = None  # when the thread's current wait ends; None: never
        self._thread = threading.Thread(target=self._run, name="smtp-watchdog", daemon=True)
        self._thread.start()

    def arm(self, sock: socket.socket | None, seconds: float) -> None:
        with self._cond:
            self._sock, self._deadline, self.fired = sock, time.monotonic() + seconds, False
            # Waking the thread for every message costs two context switches; a thread that
            # will wake up before this deadline anyway re-reads it then.
            if self._wake_at is None or self._wake_at > self._deadline:
                self._cond.notify()

    def rearm(self, sock: socket.socket | None) -> None:
        with self._cond:
            self._sock = sock
            if self.fired and sock is not None:
                # The deadline passed while no socket existed (a slow connect): cut it now.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def disarm(self) -> None:
        with self._cond:
            self._deadline, self._sock = None, None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._wake_at = None
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._wake_at = self._deadline
                    self._cond.wait(left)
                    continue
                self.fired, self._deadline = True, None
                if self._sock is not None:
                    try:
                        self._sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
