"""Bounces and complaints as real MTAs write them, made from the formats they document.

Each builder takes the failed recipient and the address the report goes to (the return path of
the message it is about: a VERP address, or a plain one for a bounce that lost it), and returns
the report's bytes. Sources: Postfix's bounce(5) templates and its DSNs (RFC 3464); Exim's
"Mail delivery failed" message with X-Failed-Recipients; qmail's QSBMF (cr.yp.to/proto/qsbmf.txt);
Exchange 5.5/2000's "did not reach the following recipient(s)" and Exchange Online's DSN; Gmail's
"Delivery Status Notification"; ARF reports (RFC 5965) as Yahoo and Outlook.com send them.
"""

from __future__ import annotations

ORIGINAL = """\
Return-Path: <{return_path}>
From: Example News <news@example.org>
To: {rcpt}
Subject: Our December news
Message-ID: <1.2.3@example.org>
Date: Tue, 01 Dec 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello,
our news.
"""


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def postfix(rcpt: str, return_path: str, *, status: str = "5.1.1", action: str = "failed") -> bytes:
    code = "550" if status.startswith("5") else "452"
    reason = (
        "Recipient address rejected: User unknown in local recipient table"
        if status.startswith("5")
        else "Insufficient system storage"
    )
    subject = (
        "Undelivered Mail Returned to Sender"
        if action == "failed"
        else "Delayed Mail (still being retried)"
    )
    return _crlf(f"""\
Return-Path: <>
Delivered-To: {return_path}
Received: by mx.example.org (Postfix) id 4AbC1; Tue,  1 Dec 2026 10:00:05 +0000 (UTC)
Date: Tue,  1 Dec 2026 10:00:05 +0000 (UTC)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: {subject}
To: {return_path}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4AbC1.1764583205/mx.example.org"
Message-Id: <20261201100005.4AbC1@mx.example.org>

This is a MIME-encapsulated message.

--4AbC1.1764583205/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{rcpt}>: host mx.example.com[192.0.2.1] said: {code} {status} <{rcpt}>:
    {reason} (in reply to RCPT TO command)

--4AbC1.1764583205/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 4AbC1
X-Postfix-Sender: rfc822; {return_path}
Arrival-Date: Tue,  1 Dec 2026 10:00:04 +0000 (UTC)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; {code} {status} <{rcpt}>: {reason}

--4AbC1.1764583205/mx.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{ORIGINAL.format(rcpt=rcpt, return_path=return_path).split(chr(10) + chr(10))[0]}

--4AbC1.1764583205/mx.example.org--
""")


def exim(rcpt: str, return_path: str) -> bytes:
    return _crlf(f"""\
Return-path: <>
Envelope-to: {return_path}
Received: from Debian-exim by mx.example.net with local (Exim 4.96)
	id 1tAbCd-0001Xy-2Z; Tue, 01 Dec 2026 10:01:00 +0000
X-Failed-Recipients: {rcpt}
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: {return_path}
Content-Type: text/plain; charset=us-ascii
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1tAbCd-0001Xy-2Z@mx.example.net>
Date: Tue, 01 Dec 2026 10:01:00 +0000

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {rcpt}
    host mx2.example.net [192.0.2.2]
    SMTP error from remote mail server after RCPT TO:<{rcpt}>:
    550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown

------ This is a copy of the message, including all the headers. ------

{ORIGINAL.format(rcpt=rcpt, return_path=return_path)}""")


def qmail(rcpt: str, return_path: str, *, temporary: bool = False) -> bytes:
    said = "452 4.2.2 <{0}>... Mailbox full" if temporary else "550 5.1.1 <{0}>... User unknown"
    return _crlf(f"""\
Return-Path: <>
Delivered-To: {return_path}
Date: 1 Dec 2026 10:02:00 -0000
From: MAILER-DAEMON@mail.example.com
To: {return_path}
Subject: failure notice
Message-ID: <20261201100200.12345.qmail@mail.example.com>

Hi. This is the qmail-send program at mail.example.com.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
192.0.2.3 does not like recipient.
Remote host said: {said.format(rcpt)}
Giving up on 192.0.2.3.

--- Below this line is a copy of the message.

{ORIGINAL.format(rcpt=rcpt, return_path=return_path)}""")


def exchange_55(rcpt: str, return_path: str) -> bytes:
    return _crlf(f"""\
From: System Administrator <postmaster@corp.example.com>
To: {return_path}
Subject: Undeliverable: Our December news
Date: Tue, 1 Dec 2026 10:03:00 +0000
Message-ID: <A1B2C3@exch01.corp.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
X-MS-Embedded-Report:

Your message

  To:      {rcpt}
  Subject: Our December news
  Sent:    Tue, 1 Dec 2026 10:00:00 +0000

did not reach the following recipient(s):

{rcpt} on Tue, 1 Dec 2026 10:03:00 +0000
            The recipient name is not recognized
            The MTS-ID of the original message is: c=US;a= ;p=Corp;l=EXCH01-261201100300Z-1
            MSEXCH:IMS:Corp:Site:EXCH01 0 (000C05A6) Unknown Recipient
            #5.1.1 smtp;550 5.1.1 User unknown
""")


def exchange_online(rcpt: str, return_path: str) -> bytes:
    return _crlf(f"""\
From: Microsoft Outlook <MAILER-DAEMON@contoso.mail.protection.outlook.com>
To: {return_path}
Date: Tue, 1 Dec 2026 10:04:00 +0000
Content-Type: multipart/report; report-type=delivery-status;
	boundary="2d7e1f2a-4e0b-4c53-8b1f-0c8f9a0d7a11"
MIME-Version: 1.0
Subject: Undeliverable: Our December news
Message-ID: <0b3c-4e9d@DM6PR01MB1234.namprd01.prod.outlook.com>
Auto-Submitted: auto-replied

--2d7e1f2a-4e0b-4c53-8b1f-0c8f9a0d7a11
Content-Type: text/plain; charset="us-ascii"

Your message to {rcpt} couldn't be delivered.
{rcpt.split("@")[0]} wasn't found at {rcpt.split("@")[1]}.

Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by
SMTP address lookup'

--2d7e1f2a-4e0b-4c53-8b1f-0c8f9a0d7a11
Content-Type: message/delivery-status

Reporting-MTA: dns;DM6PR01MB1234.namprd01.prod.outlook.com
Received-From-MTA: dns;mx.example.org
Arrival-Date: Tue, 1 Dec 2026 10:03:59 +0000

Final-Recipient: rfc822;{rcpt}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP
 address lookup

--2d7e1f2a-4e0b-4c53-8b1f-0c8f9a0d7a11
Content-Type: message/rfc822

{ORIGINAL.format(rcpt=rcpt, return_path=return_path)}
--2d7e1f2a-4e0b-4c53-8b1f-0c8f9a0d7a11--
""")


def gmail(rcpt: str, return_path: str, *, temporary: bool = False) -> bytes:
    if temporary:
        subject, action, status = "Delivery Status Notification (Delay)", "delayed", "4.2.2"
        diagnostic = "smtp; 452-4.2.2 The email account that you tried to reach is over quota."
    else:
        subject, action, status = "Delivery Status Notification (Failure)", "failed", "5.1.1"
        diagnostic = "smtp; 550-5.1.1 The email account that you tried to reach does not exist."
    return _crlf(f"""\
Delivered-To: {return_path}
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {return_path}
Auto-Submitted: auto-replied
Subject: {subject}
Message-ID: <5f1d2e3c.{action}@mx.google.com>
Date: Tue, 01 Dec 2026 02:05:00 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3"; report-type=delivery-status

--000000000000a1b2c3
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to {rcpt} because the address couldn't be found, or is unable
to receive mail.

--000000000000a1b2c3
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; mx.example.org
Arrival-Date: Tue, 01 Dec 2026 02:04:59 -0800 (PST)

Final-Recipient: rfc822; {rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; gmail-smtp-in.l.google.com.
Diagnostic-Code: {diagnostic}
Last-Attempt-Date: Tue, 01 Dec 2026 02:05:00 -0800 (PST)

--000000000000a1b2c3
Content-Type: text/rfc822-headers

{ORIGINAL.format(rcpt=rcpt, return_path=return_path).split(chr(10) + chr(10))[0]}

--000000000000a1b2c3--
""")


def arf(rcpt: str, return_path: str, *, feedback: str = "abuse", redacted: bool = False) -> bytes:
    """An RFC 5965 report; `redacted` as Outlook.com and Yahoo send them: no Original-Rcpt-To
    and no Original-Mail-From, only the original's headers (and To) left."""
    fields = (
        "" if redacted else (f"Original-Mail-From: <{return_path}>\nOriginal-Rcpt-To: <{rcpt}>\n")
    )
    return _crlf(f"""\
From: <feedback@arf.mail.example-isp.com>
To: fbl@example.org
Subject: FW: Our December news
Date: Tue, 01 Dec 2026 10:06:00 +0000
Message-ID: <arf.{feedback}.{redacted}@example-isp.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
	boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP 192.0.2.1 on
Tue, 01 Dec 2026 10:00:00 +0000. For more information about this format please see
http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: {feedback}
User-Agent: ExampleISP-FBL/1.0
Version: 1
{fields}Arrival-Date: Tue, 01 Dec 2026 10:00:00 +0000
Reported-Domain: example.org
Source-IP: 192.0.2.1

--part1_13d.2e68ed54_boundary
Content-Type: {"text/rfc822-headers" if redacted else "message/rfc822"}
Content-Disposition: inline

{ORIGINAL.format(rcpt=rcpt, return_path="redacted@example.org" if redacted else return_path)}
--part1_13d.2e68ed54_boundary--
""")


def autoreply(return_path: str) -> bytes:
    return _crlf(f"""\
From: Ann Lee <ann@example.com>
To: {return_path}
Subject: Out of office: Our December news
Auto-Submitted: auto-replied
Message-ID: <ooo.1@example.com>
Date: Tue, 01 Dec 2026 10:07:00 +0000

I am out of the office until January. Your mail will not be forwarded.
""")


def delivered(rcpt: str, return_path: str) -> bytes:
    """A success notification (NOTIFY=SUCCESS): good news, no bounce."""
    return postfix(rcpt, return_path, status="2.0.0", action="delivered")


# name: (builder, expected kind, expected status prefix)
FORMATS = {
    "postfix": (postfix, "hard", "5.1.1"),
    "postfix-delayed": (
        lambda r, p: postfix(r, p, status="4.4.1", action="delayed"),
        "soft",
        "4.4.1",
    ),
    "exim": (exim, "hard", "5.1.1"),
    "qmail": (qmail, "hard", "5.1.1"),
    "qmail-mailbox-full": (lambda r, p: qmail(r, p, temporary=True), "soft", "4.2.2"),
    "exchange-5.5": (exchange_55, "hard", "5.1.1"),
    "exchange-online": (exchange_online, "hard", "5.1.10"),
    "gmail": (gmail, "hard", "5.1.1"),
    "gmail-over-quota": (lambda r, p: gmail(r, p, temporary=True), "soft", "4.2.2"),
    "arf": (arf, "complaint", "abuse"),
    "arf-redacted": (lambda r, p: arf(r, p, redacted=True), "complaint", "abuse"),
}
