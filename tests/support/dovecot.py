"""A throwaway Dovecot serving IMAP and POP3 (STARTTLS and implicit TLS) on 127.0.0.1, with one
test user whose Maildir the tests fill: the bounce mailbox `mailctl bounces fetch` reads.

Its own config dir, passwd-file and certificate (self-signed, made by the test), like the
Dovecot behind tests/support/postfix.py; started and stopped by the `dovecot` fixture.
"""

from __future__ import annotations

import mailbox
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.certs import Authority

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces@example.org", "mailbox secret"

CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{dir}/server.crt
ssl_key = <{dir}/server.key
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:{dir}/mail/%n
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%n
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def available() -> str | None:
    if not os.path.exists(DOVECOT):
        return "Dovecot is not installed"
    if not Path("/usr/lib/dovecot/imap").exists() or not Path("/usr/lib/dovecot/pop3").exists():
        return "dovecot-imapd and dovecot-pop3d are not installed"
    if os.geteuid() != 0:
        return "this Dovecot instance is started as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    directory: Path
    ports: dict[str, int]  # imap, imaps, pop3, pop3s
    ca_file: Path
    _proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls) -> Dovecot:
        directory = Path(tempfile.mkdtemp(prefix="mailctl-dovecot-"))
        directory.chmod(0o755)
        cert = Authority(directory).issue("server", self_signed=True)  # server.crt, .key
        cert.key.chmod(0o600)
        (directory / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        ports = {name: _free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
        import pwd

        nobody = pwd.getpwnam("nobody")
        (directory / "dovecot.conf").write_text(
            CONF.format(dir=directory, uid=nobody.pw_uid, gid=nobody.pw_gid, **ports)
        )
        proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(directory / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = cls(directory, ports, directory / "server.crt", proc)
        try:
            server.maildir()  # created before the first login, owned by the mail user
            deadline = time.monotonic() + 30
            for port in ports.values():
                while True:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"dovecot did not start: {server.log()}")
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                            break
                    except OSError:
                        time.sleep(0.05)
        except BaseException:
            server.stop()
            raise
        return server

    def log(self) -> str:
        path = self.directory / "dovecot.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        if self._proc.poll() is not None and self._proc.stderr is not None:
            text += self._proc.stderr.read().decode(errors="replace")
        return text[-3000:]

    def maildir(self, folder: str = "") -> mailbox.Maildir:
        """The test user's Maildir (a folder of it: Dovecot's Maildir++ `.name`)."""
        import pwd

        root = self.directory / "mail" / USER.split("@")[0]
        path = root / f".{folder}" if folder else root
        root.parent.mkdir(exist_ok=True)
        box = mailbox.Maildir(path, create=True)
        nobody = pwd.getpwnam("nobody")
        for dirpath, _, files in os.walk(root):
            os.chown(dirpath, nobody.pw_uid, nobody.pw_gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), nobody.pw_uid, nobody.pw_gid)
        return box

    def deliver(self, *messages: bytes) -> None:
        box = self.maildir()
        for raw in messages:
            box.add(raw)
        box.close()
        self.maildir()  # hand the new files to the mail user

    def count(self, folder: str = "") -> int:
        return len(self.maildir(folder))

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    why = available()
    if why is not None:
        pytest.skip(why)
    server = Dovecot.start()
    try:
        yield server
    finally:
        server.stop()
