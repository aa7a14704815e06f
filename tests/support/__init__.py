"""What the tests share: fixtures (pytest plugins, registered in tests/conftest.py) and helpers.

Tests import helpers from here and never from one another or from a conftest.py:

- env: the clean environment every test gets, settings, the database, users, the CLI
- world: one populated World (an account per role, each with its own objects)
- smtp: real SMTP sinks (aiosmtpd) and SMTP settings pointing at them
- ledger: reads of the delivery ledger and the log, for assertions
- web: the panel under TestClient and helpers to drive its forms
- mail: the emails the outbox transport wrote
- procs: mailctl subprocesses (daemons, run-due), a fake crontab, waiting by polling
- cli: assertions on CLI results
- faultserver: a misbehaving SMTP server for fault tests
- scaleout: daemons on one PostgreSQL database, a sink that knows who sent what
- browser: a real `mailctl serve` and headless Chromium
- terminal: a command on a pseudo-terminal (pexpect), its screen as a person sees it
- spreadsheet: how Excel and LibreOffice would read a CSV cell (the formula guard's tests)
- certs: a throwaway CA and server certificates for the TLS tests
- postfix: a throwaway Postfix relay (STARTTLS, implicit TLS, logins through Dovecot)
"""
