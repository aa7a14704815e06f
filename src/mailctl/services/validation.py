"""Input rules shared by every service."""

from __future__ import annotations

from mailctl.errors import Invalid

EMAIL_MAX = 254
ID_MAX = 2**63  # ids from this up are too big for the database even to look up
LOCAL_PART_MAX = 64  # RFC 5321 4.5.3.1.1; email-validator checks it only in strict mode


def clean_email(value: str) -> str:
    """A syntactically valid address (no DNS look-up), domain normalised, case kept."""
    # Loaded on first use: commands that only read (client list) never check an address.
    from email_validator import EmailNotValidError, validate_email

    from mailctl.sending.mime import check_header

    value = (value or "").strip()
    if not value:
        raise Invalid("email is required")
    try:
        check_header(value, "email")
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise Invalid(f"invalid email {value!r}: {exc}") from None
    except Invalid:
        raise Invalid(f"invalid email {value!r}: contains a line break") from None
    if len(result.local_part.encode()) > LOCAL_PART_MAX:
        raise Invalid(
            f"invalid email {value!r}: the part before the @-sign is longer than "
            f"{LOCAL_PART_MAX} characters"
        )
    # The ASCII form (an internationalised domain in punycode) is what SMTP and headers carry.
    return result.ascii_email or result.normalized


def clean_text(
    value: str | None,
    *,
    field: str,
    max_len: int,
    required: bool = False,
    single_line: bool = False,
    strip: bool = True,
) -> str:
    """`strip=False` keeps the text as written (a message body's indents and last newline);
    emptiness is still judged without the surrounding whitespace."""
    value = value or ""
    if strip:
        value = value.strip()
    if required and not value.strip():
        raise Invalid(f"{field} must not be empty")
    if len(value) > max_len:
        raise Invalid(f"{field} is too long ({len(value)} characters, at most {max_len})")
    if single_line and ("\r" in value or "\n" in value):
        raise Invalid(f"{field} must be a single line")
    if "\x00" in value:
        raise Invalid(f"{field} contains a NUL character")
    return value
