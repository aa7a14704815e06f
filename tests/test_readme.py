"""The README's shell examples, run as written: every `mailctl` command in its ```sh blocks, in
order, in a fresh home with the default outbox transport, on a pseudo-terminal (so the prompts
that ask for a password are answered, as a person would).

The Quick start is a tour of its own (a demo database) and runs in a home of its own; every
other block runs, top to bottom, in a second fresh home, and `export NAME=value` lines in the
blocks set the environment of the commands after them. Commands that only make sense on a
server (sudo, systemd, the real crontab) are listed in readme_skipped.txt beside this file; the
test proves that every other mailctl command of the README ran and exited 0, and that the list
names no command the README no longer has. Long-running commands (serve, web, daemon) are
stopped with Ctrl-C once they are up, and must then exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import stat
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIPPED = Path(__file__).with_name("readme_skipped.txt")
PASSWORD = "typed-at-the-prompt-1"
LONG_RUNNING = {"serve": "Application startup complete", "web": "Application startup complete"}
LONG_RUNNING["daemon"] = "started: tick"
PROMPTS = ["Password: ", "Repeat for confirmation: ", "New password: "]


@dataclass(frozen=True)
class Command:
    section: str
    text: str  # one command (a pipeline), as written, without its comment

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text)


def _split(line: str) -> Iterator[str]:
    """The commands of one shell line: split at ; && || outside quotes, comment dropped."""
    current, quote, i = "", "", 0
    while i < len(line):
        c = line[i]
        if quote:
            quote = "" if c == quote else quote
            current += c
        elif c in "'\"":
            quote = c
            current += c
        elif c == "#" and (not current or current[-1].isspace()):
            break
        elif line.startswith(("&&", "||"), i):
            yield current.strip()
            current = ""
            i += 1
        elif c == ";":
            yield current.strip()
            current = ""
        else:
            current += c
        i += 1
    if current.strip():
        yield current.strip()


def _program(words: list[str]) -> tuple[str, list[str]]:
    """The program a simple command runs (past VAR=x and sudo [-u user]), and its arguments."""
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words = words[1:]
    if words and words[0] == "sudo":
        words = words[1:]
        while words and words[0].startswith("-"):
            words = words[2:] if words[0] in ("-u", "-g") else words[1:]
    return (words[0] if words else ""), words[1:]


def is_mailctl(command: str) -> bool:
    try:
        parts = [shlex.split(p) for p in command.split("|")]
    except ValueError:
        return False
    return any(_program(words)[0] == "mailctl" for words in parts)


def readme_commands() -> list[Command]:
    """Every command of the README's shell blocks, in order, with the section it is under."""
    found: list[Command] = []
    section = ""
    in_block = False
    pending = ""
    for line in README.read_text(encoding="utf-8").splitlines():
        if not in_block and line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            in_block = not in_block and line.strip() in ("```sh", "```bash")
            continue
        if not in_block:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full, pending = pending + line, ""
        for text in _split(full):
            if text:
                found.append(Command(section, " ".join(text.split())))
    return found


def skipped() -> set[str]:
    lines = SKIPPED.read_text(encoding="utf-8").splitlines()
    return {" ".join(line.split()) for line in lines if line.strip() and not line.startswith("#")}


# -- the files the examples name ------------------------------------------------------------


def _png(path: Path) -> None:
    width, height = 8, 8
    rows = b"".join(b"\x00" + b"\x30\x90\xe0" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _example_files(directory: Path) -> None:
    (directory / "pw.txt").write_text(PASSWORD + "\n")
    (directory / "contacts.csv").write_text(
        "email,full_name,comment\n"
        "ivan@example.org,Ivan Sidorov,\n"
        "marie@example.org,Marie Curie,met at the fair\n"
        "ada@example.net,Ada Lovelace,\n"
    )
    (directory / "more-contacts.csv").write_text(
        "email,full_name,comment\nli.wei@example.org,Li Wei,\nsam@example.net,Sam Taylor,\n"
    )
    (directory / "news.txt").write_text(
        "Dear {{ client.full_name }},\n\n  our news, indented as written.\n\n"
        "Unsubscribe: {{ unsubscribe_url }}\n"
    )
    (directory / "post.md").write_text("Spring is here.\n\nOur offers for the season.\n")
    _png(directory / "cover.png")
    (directory / "bounce.eml").write_text(
        "From: MAILER-DAEMON@mx.example.net\nTo: news@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <b1@mx.example.net>\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        "Final-Recipient: rfc822; vera@example.org\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n--b--\n"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Home:
    """A fresh home and working directory, with `mailctl` on the PATH running this code."""

    def __init__(self, root: Path) -> None:
        self.home, self.cwd, bin_dir = root / "home", root / "work", root / "bin"
        for d in (self.home, self.cwd, bin_dir):
            d.mkdir(parents=True)
        shim = bin_dir / "mailctl"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mailctl "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
        keep = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env |= {
            "HOME": str(self.home),
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "TERM": "xterm-256color",
            # The documented variable: the panel of `serve` and `web` on a port of its own.
            "MAILCTL_WEB_PORT": str(_free_port()),
        }
        _example_files(self.cwd)

    def run(self, command: Command) -> str:
        """Run one command on a pseudo-terminal; its output, or an AssertionError."""
        child = pexpect.spawn(
            "/bin/bash",
            ["-c", command.text],
            cwd=str(self.cwd),
            env=self.env,
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(50, 160),
            timeout=120,
        )
        seen = ""
        _program_name, args = _program(command.words)
        verb = next((a for a in args if not a.startswith("-")), "")
        try:
            if verb in LONG_RUNNING:
                child.expect(LONG_RUNNING[verb])
                seen += (child.before or "") + str(child.after)
                child.sendintr()
                child.expect(pexpect.EOF)
            else:
                while True:
                    index = child.expect([*PROMPTS, pexpect.EOF])
                    seen += (child.before or "") + (str(child.after) if index < 3 else "")
                    if index == len(PROMPTS):
                        break
                    child.sendline(PASSWORD)
        except pexpect.TIMEOUT:
            child.terminate(force=True)
            raise AssertionError(
                f"`{command.text}` did not finish:\n{seen}{child.before}"
            ) from None
        seen += child.before or ""
        child.close()
        assert child.exitstatus == 0, f"`{command.text}` exited {child.exitstatus}:\n{seen}"
        assert "Traceback" not in seen, f"`{command.text}`:\n{seen}"
        return seen

    def apply(self, command: Command) -> bool:
        """`export NAME=value` / `unset NAME` lines change the environment of what follows."""
        words = command.words
        if words and words[0] == "export":
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                self.env[name] = value
            return True
        if words and words[0] == "unset":
            for name in words[1:]:
                self.env.pop(name, None)
            return True
        return False


def test_the_skip_list_names_only_readme_commands() -> None:
    present = {c.text for c in readme_commands()}
    stale = skipped() - present
    assert not stale, f"readme_skipped.txt names commands the README no longer has: {stale}"
    assert all(is_mailctl(line) for line in skipped()), "only mailctl commands are skipped"


@pytest.mark.slow
def test_every_readme_example_runs(tmp_path: Path) -> None:
    commands = readme_commands()
    wanted = [c for c in commands if is_mailctl(c.text) and c.text not in skipped()]
    assert len(wanted) >= 40, f"found only {len(wanted)} mailctl examples: is the parser right?"
    homes = {"Quick start": Home(tmp_path / "quick-start"), "": Home(tmp_path / "readme")}
    ran: list[str] = []
    outputs: dict[str, str] = {}
    for command in commands:
        home = homes["Quick start"] if command.section == "Quick start" else homes[""]
        if home.apply(command) or command not in wanted:
            continue
        outputs[command.text] = home.run(command)
        ran.append(command.text)
    assert ran == [c.text for c in wanted]  # every mailctl line of the README, in order

    # What the examples say happened, happened.
    main = homes[""]
    outbox = main.home / ".local" / "share" / "mailctl" / "outbox"
    assert len(list(outbox.glob("*.eml"))) >= 5 + 2  # mailing 1 to all, mailing 2 to two
    assert "News for" in outputs["mailctl message preview 1 --client 3"]
    assert (main.cwd / "backup.csv").read_text().count("\n") == 1 + 6
    assert (main.cwd / "attempts.csv").exists()
    demo = homes["Quick start"].home / ".local" / "share" / "mailctl" / "mailctl.db"
    assert demo.exists(), "the quick start made no demo database"
