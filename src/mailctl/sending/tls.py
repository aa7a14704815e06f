"""TLS for the SMTP transport: the client context, and certificate failures in plain words."""

from __future__ import annotations

import ssl

# OpenSSL's X509_V_ERR_* codes, as a person would say them.
_SELF_SIGNED = (18, 19)
_UNKNOWN_CA = (2, 20, 21)
_EXPIRED, _NOT_YET_VALID = 10, 9
_WRONG_HOST = (62, 64)


def certificate_problem(exc: ssl.SSLCertVerificationError, host: str) -> str:
    """One line that names what is wrong with the server's certificate."""
    code = exc.verify_code
    if code in _SELF_SIGNED:
        what = "is self-signed; trust it with smtp.ca_file"
    elif code in _UNKNOWN_CA:
        what = "is signed by an unknown certificate authority; trust that CA with smtp.ca_file"
    elif code == _EXPIRED:
        what = "has expired"
    elif code == _NOT_YET_VALID:
        what = "is not valid yet (is this machine's clock right?)"
    elif code in _WRONG_HOST:
        what = f"is for another host name, not {host!r} (smtp.host must be a name it lists)"
    else:
        what = f"was refused: {exc.verify_message or exc.reason or exc}"
    return f"TLS: the mail server's certificate {what}"


class CaFileError(Exception):
    """smtp.ca_file cannot be used."""


def client_context(ca_file: str = "") -> ssl.SSLContext:
    """The system's trusted CAs, plus those of `ca_file` (a private CA or a self-signed server
    certificate); the certificate must always name the host."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except ssl.SSLError:  # before OSError, its base class
            raise CaFileError(f"smtp.ca_file {ca_file} holds no PEM certificate") from None
        except OSError as exc:
            raise CaFileError(f"cannot read smtp.ca_file {ca_file}: {exc.strerror}") from None
    return context
