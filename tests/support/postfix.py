"""A throwaway Postfix relay on two free ports (STARTTLS and implicit TLS), with logins checked
by a throwaway Dovecot, both with config dirs of their own: the real MTA a relay runs.

Accepted mail is put on hold in the instance's own queue (a header check), so nothing is ever
delivered anywhere; the tests count the held files and read Postfix's log.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def available() -> str | None:
    """Why this machine cannot run the relay, or None when it can."""
    if not os.path.exists(POSTFIX):
        return "Postfix is not installed"
    if not os.path.exists(DOVECOT):
        return "Dovecot is not installed (it checks the relay's logins)"
    if os.geteuid() != 0:
        return "a Postfix instance must be started as root"
    try:
        import pwd

        pwd.getpwnam("postfix")
    except KeyError:
        return "there is no postfix user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    # A connection is enough: the implicit-TLS port says nothing before a TLS handshake.
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"no answer on port {port}: {log.read_text()[-2000:] if log.exists() else ''}"
    )


MASTER_CF = """\
127.0.0.1:{starttls} inet n - n - - smtpd
127.0.0.1:{implicit} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {dir}
maillog_file = {dir}/maillog
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = localhost
mydestination =
alias_maps =
alias_database =
notify_classes =
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
header_checks = regexp:{dir}/hold
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_type = dovecot
smtpd_sasl_path = {dir}/auth
smtpd_sasl_auth_enable = yes
"""

DOVECOT_CONF = """\
base_dir = {dir}/dovecot-run
state_dir = {dir}/dovecot-state
log_path = {dir}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {dir}/auth {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class PostfixRelay:
    directory: Path
    starttls_port: int
    implicit_port: int
    _postfix: subprocess.Popen[bytes]
    _dovecot: subprocess.Popen[bytes]

    @classmethod
    def start(cls, cert: Path, key: Path, user: str, password: str) -> PostfixRelay:
        # Not under pytest's tmp dirs: those are closed to the postfix user.
        directory = Path(tempfile.mkdtemp(prefix="mailctl-postfix-"))
        directory.chmod(0o755)
        (directory / "queue").mkdir()
        data = directory / "data"
        data.mkdir()
        shutil.chown(data, "postfix")
        for src, name in ((cert, "server.crt"), (key, "server.key")):
            shutil.copy(src, directory / name)
        (directory / "server.key").chmod(0o600)
        (directory / "hold").write_text("/^/ HOLD\n")
        (directory / "users").write_text(f"{user}:{{PLAIN}}{password}\n")
        starttls, implicit = _free_port(), _free_port()
        values = {
            "dir": directory,
            "cert": directory / "server.crt",
            "key": directory / "server.key",
            "starttls": starttls,
            "implicit": implicit,
        }
        (directory / "main.cf").write_text(MAIN_CF.format(**values))
        (directory / "master.cf").write_text(MASTER_CF.format(**values))
        (directory / "dovecot.conf").write_text(DOVECOT_CONF.format(**values))
        null = subprocess.DEVNULL
        dovecot = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(directory / "dovecot.conf")], stdout=null, stderr=null
        )
        # Its own process group: postfix-script runs the master as a child, and a stop that
        # went wrong can still end exactly the processes started here.
        postfix = subprocess.Popen(
            [POSTFIX, "-c", str(directory), "start-fg"],
            stdout=null,
            stderr=null,
            start_new_session=True,
        )
        relay = cls(directory, starttls, implicit, postfix, dovecot)
        try:
            deadline = time.monotonic() + 30
            while not (directory / "auth").exists():
                if dovecot.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not start: {relay.log('dovecot.log')}")
                time.sleep(0.05)
            for port in (starttls, implicit):
                _wait_port(port, postfix, directory / "maillog", deadline)
        except BaseException:
            relay.stop()
            raise
        return relay

    def log(self, name: str = "maillog") -> str:
        path = self.directory / name
        return path.read_text(errors="replace") if path.exists() else ""

    def held(self) -> list[Path]:
        return sorted((self.directory / "queue" / "hold").glob("*"))

    def stop(self) -> None:
        if self._postfix.poll() is None:
            subprocess.run(
                [POSTFIX, "-c", str(self.directory), "stop"], capture_output=True, timeout=30
            )
        if self._dovecot.poll() is None:
            self._dovecot.send_signal(signal.SIGTERM)
        for proc, group in ((self._postfix, True), (self._dovecot, False)):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                if group:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)
