"""The hand-built MIME message parses back to exactly what was meant."""

from __future__ import annotations

import email
import email.policy
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest

from mailctl.errors import Invalid
from mailctl.sending.mime import encode_header
from mailctl.sending.render import MessageContent, MessageRenderer
from mailctl.sending.templates import RenderClient, validate_template


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects, msg.defects
    return msg


def render(subject: str, body: str, name: str = "Ann Lee", **kw: object) -> bytes:
    renderer = MessageRenderer(
        MessageContent(subject=subject, body=body),
        from_address="news@example.org",
        from_name="News",
        **kw,  # type: ignore[arg-type]
    )
    return renderer.render(RenderClient("ann@example.com", name), unsubscribe_url="").data


def header_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


@pytest.mark.parametrize(
    "subject",
    [
        "Ünïcödé " * 30,
        "日本語のとても長い件名です。" * 12,
        "emoji 🎉🎉🎉 " * 20,
        "mixed ASCII and ä " + "x" * 200 + " ö",
        "a" * 44 + "é" + "b" * 100,  # a two-byte character right at a chunk edge
    ],
)
def test_long_non_ascii_subject_splits_into_valid_encoded_words(subject: str) -> None:
    encoded = encode_header(subject)
    assert encoded.isascii()
    for word in encoded.split("\r\n "):
        assert len(word) <= 75  # RFC 2047 section 2
    data = render(subject, "body")
    assert all(len(line) <= 998 for line in header_lines(data))
    assert str(parse(data)["Subject"]) == subject


@pytest.mark.parametrize(
    "subject",
    [
        "plain ascii subject",
        "=?utf-8?b?c3Bvb2Y=?= looks encoded",  # must not be decoded into something else
        "x" * 998,  # one word as long as a header line may be: encoded words
        "word " * 150 + "end",  # folded at its spaces
        "tab\tand control \x1b char",
    ],
)
def test_ascii_subjects_round_trip(subject: str) -> None:
    data = render(subject, "body")
    assert all(len(line) <= 998 for line in header_lines(data))
    assert str(parse(data)["Subject"]) == subject


@pytest.mark.parametrize("name", ["José Müller", "山田 優希", "Zoë", "é" * 22, "é" * 23])
def test_short_non_ascii_names_are_one_encoded_word(name: str) -> None:
    encoded = encode_header(name)
    words = encoded.split("\r\n ")
    assert len(words) == (1 if len(name.encode()) <= 45 else 2)
    assert all(w.startswith("=?utf-8?b?") and len(w) <= 75 for w in words)
    data = render("s", "b", name=name)
    # RFC 2047 decoding of the raw header (the stdlib's newer address parser keeps a space
    # between two encoded words of a display name, so it only checks the one-word case).
    raw = email.message_from_bytes(data)["To"]
    assert str(make_header(decode_header(raw))) == f"{name} <ann@example.com>"
    if len(words) == 1:
        assert parse(data)["To"].addresses[0].display_name == name


def test_plain_ascii_subject_is_not_encoded() -> None:
    assert encode_header("Hello Ann") == "Hello Ann"
    assert b"Subject: Hello Ann\r\n" in render("Hello {{ client.first_name }}", "b")


def test_ascii_body_is_7bit_with_crlf() -> None:
    data = render("s", "line one\nline two\r\n.starts with a dot\rlone cr")
    msg = parse(data)
    assert msg["Content-Transfer-Encoding"] == "7bit"
    assert b"line one\r\nline two\r\n.starts with a dot\r\nlone cr\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")  # no bare LF anywhere
    assert msg.get_content().replace("\r\n", "\n").rstrip("\n") == (
        "line one\nline two\n.starts with a dot\nlone cr"
    )


def test_non_ascii_body_is_base64_utf8() -> None:
    body = "Grüße aus Köln — 東京\n" * 50
    data = render("s", body)
    msg = parse(data)
    assert msg["Content-Transfer-Encoding"] == "base64"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content() == body
    assert all(len(line) <= 76 for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))


def test_lines_over_998_characters_are_base64() -> None:
    body = "short\n" + "y" * 5000 + "\nend"
    data = render("s", body)
    msg = parse(data)
    assert msg["Content-Transfer-Encoding"] == "base64"
    assert msg.get_content() == body
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_line_of_exactly_998_stays_7bit() -> None:
    data = render("s", "z" * 998)
    assert parse(data)["Content-Transfer-Encoding"] == "7bit"


def test_headers_and_personalisation() -> None:
    renderer = MessageRenderer(
        MessageContent(
            subject="Hi {{ client.first_name }}",
            body="{{ client.full_name }} <{{ client.email }}> {{ unsubscribe_url }}",
        ),
        from_address="news@example.org",
        from_name="Ünïcode News",
        unsubscribe=True,
    )
    first = renderer.render(
        RenderClient("ann@example.com", "Ann Lee"), unsubscribe_url="https://x/u/1"
    )
    second = renderer.render(RenderClient("bo@example.com", "Bo"), unsubscribe_url="https://x/u/2")
    a, b = parse(first.data), parse(second.data)
    assert str(a["Subject"]) == "Hi Ann" and str(b["Subject"]) == "Hi Bo"
    assert a["From"].addresses[0].display_name == "Ünïcode News"
    assert a["Message-ID"] != b["Message-ID"]
    assert a["Message-ID"].endswith("@example.org>")
    assert a["List-Unsubscribe"] == "<https://x/u/1>"
    assert a["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert a.get_content().strip() == "Ann Lee <ann@example.com> https://x/u/1"
    assert first.subject == "Hi Ann"


def test_no_list_unsubscribe_without_a_url() -> None:
    data = render("s", "b", unsubscribe=True)
    assert parse(data)["List-Unsubscribe"] is None


def test_first_name_of_an_empty_name_is_empty() -> None:
    assert RenderClient("a@example.com", "  ").first_name == ""
    assert RenderClient("a@example.com", "Ann  Lee").first_name == "Ann"


# -- the template sandbox ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{{ client.email.__class__.__mro__ }}", ""),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", ""),
        ("{{ client.__init__.__globals__ }}", ""),
        ("{{ cycler.__init__.__globals__.os }}", ""),
        ("{{ 'x' * 1000000000 }}", "builds a value of more than 1,000,000 bytes"),
        ("{{ 10 ** 100000000 }}", "computes a number of more than 100,000 bits"),
        ("{{ password }}", "unknown placeholder password"),
        ("{{ client.phone }}", "client.email, client.full_name, client.first_name"),
        ("{{ client.email ", "template error at line 1"),
        ("{{ 1 / 0 }}", "fails to render"),
        ("{% include 'x' %}", ""),
    ],
)
def test_templates_that_escape_or_break_are_refused(template: str, complaint: str) -> None:
    with pytest.raises(Invalid) as info:
        validate_template(template, field="body")
    assert str(info.value).startswith("body: ")
    assert complaint in str(info.value)


def test_a_subject_must_render_to_one_line() -> None:
    with pytest.raises(Invalid, match="single line"):
        validate_template("Hi{{ '\\n' }}Bcc: evil@example.com", field="subject")
    validate_template("Hi{{ '\\n' }}there", field="body")  # a body may


def test_ordinary_templates_pass() -> None:
    validate_template("Hello {{ client.first_name | upper }}!", field="subject")
    validate_template(
        "{% if client.full_name %}Dear {{ client.full_name }}{% else %}Hello{% endif %},\n"
        "{{ 'ab' * 3 }} {{ unsubscribe_url }}",
        field="body",
    )


# -- the fast path renders exactly what Jinja renders ------------------------------------------

FAST_CASES = [
    "Hello {{ client.full_name }}!",
    "{{ client.first_name }}{{ client.email }}{{ unsubscribe_url }}",
    "no placeholders at all\n",
    "trailing newline kept\n\n",
    "{{ client.full_name | upper }} uses a filter",  # not fast: goes through Jinja
    "{% if client.full_name %}{{ client.full_name }}{% endif %}",
    "{{ client.email }} {# a comment #} end",
    "{{ client['email'] }}",
    "{% raw %}{{ not a placeholder }}{% endraw %} {{ client.email }}",
]


@pytest.mark.parametrize("template", FAST_CASES)
@pytest.mark.parametrize("name", ["Ann Lee", "", "  ", "José Müller"])
def test_compiled_templates_match_jinja(template: str, name: str) -> None:
    from mailctl.sending.sandbox import DEFAULT_LIMITS, metered
    from mailctl.sending.templates import _env, compile_template

    client = RenderClient("ann@example.com", name)
    expected = _env.from_string(template).render(client=client, unsubscribe_url="https://u/1")
    part, _uses_jinja = compile_template(template)
    with metered(DEFAULT_LIMITS) as meter:
        assert part(client, {"unsubscribe_url": "https://u/1"}, meter) == expected


def test_unsubscribe_links_are_valid_tokens(settings) -> None:
    from mailctl.sending.links import FastUnsubscribeLinks, Links
    from mailctl.tokens import unsign

    policy = Links.from_settings(settings)
    links = FastUnsubscribeLinks(policy)
    for client_id in (1, 42, 10**9):
        fast = links(client_id)
        slow = policy.unsubscribe_url(client_id)
        prefix = f"{policy.base_url}/unsubscribe/"
        assert fast.startswith(prefix)
        assert unsign(policy.secret, "unsubscribe", fast.removeprefix(prefix)) == client_id
        # Same format as tokens.sign (equal unless the second ticked over in between).
        assert len(fast) == len(slow)
    with pytest.raises(Invalid):
        unsign(policy.secret, "reset", links(1).rpartition("/")[2])  # purpose-bound
