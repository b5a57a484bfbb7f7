"""Inbound e-mail classification: pure functions, no database, no clock."""

import datetime
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from integrations.inbound.classify import (
    Promise,
    extract_promise,
    is_automatic,
    mentions_dispute,
    references,
    reply_token,
    visible_text,
)

TODAY = datetime.date(2026, 12, 7)  # a Monday


def parse(raw: str | bytes) -> EmailMessage:
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return message_from_bytes(data, policy=policy.default)


def mail(headers: dict | None = None, body: str = "Hello, we will pay soon.") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "debtor@example.com"
    message["To"] = "ar+abcdef123456@collect.example"
    message["Subject"] = "Re: Invoice INV-1"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message


# ---------------------------------------------------------------- is_automatic


def test_a_human_reply_is_not_automatic():
    assert is_automatic(mail()) is None


def test_auto_submitted_no_is_human():
    assert is_automatic(mail({"Auto-Submitted": "no"})) is None


@pytest.mark.parametrize(
    "value", ["auto-replied", "auto-generated", "auto-notified", "Auto-Replied; owner=x"]
)
def test_auto_submitted_values(value):
    assert is_automatic(mail({"Auto-Submitted": value})).startswith("auto-submitted")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "vacation"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"Precedence": "junk"},
        {"Precedence": "list"},
        {"X-Precedence": "bulk"},
        {"X-MS-Exchange-Generated-Message-Source": "Mailbox Rules Agent"},
        {"List-Id": "<news.example.com>"},
        {"List-Unsubscribe": "<mailto:unsub@example.com>"},
        {"Return-Path": "<>"},
    ],
)
def test_automatic_headers(headers):
    assert is_automatic(mail(headers)) is not None


def test_precedence_first_class_is_human():
    assert is_automatic(mail({"Precedence": "first-class"})) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Invoice INV-1",
        "Automatic reply: Invoice INV-1",
        "Autoreply: your message",
        "Abwesenheitsnotiz: Rechnung",
        "Automatische Antwort: Rechnung",
        "Absence du bureau",
        "Réponse automatique : Facture",
        "Respuesta automática: Factura",
        "Fuera de la oficina",
    ],
)
def test_out_of_office_subjects(subject):
    message = mail()
    message.replace_header("Subject", subject)
    assert is_automatic(message) == "out-of-office subject"


def test_x_auto_response_suppress_alone_is_not_enough():
    assert is_automatic(mail({"X-Auto-Response-Suppress": "OOF, AutoReply"})) is None


def test_x_auto_response_suppress_with_a_hint_subject():
    message = mail({"X-Auto-Response-Suppress": "OOF"})
    message.replace_header("Subject", "Away on vacation")
    assert is_automatic(message) == "out-of-office hint"


def test_a_bounce_is_automatic():
    raw = (
        "From: MAILER-DAEMON@example.com\r\nTo: ar@collect.example\r\nSubject: Undelivered\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n"
    )
    assert is_automatic(parse(raw)) == "bounce"


def test_header_injection_in_a_subject_does_not_add_a_header():
    raw = "From: a@example.com\r\nSubject: Hello\r\n\tAuto-Submitted: auto-replied\r\n\r\nbody\r\n"
    assert is_automatic(parse(raw)) is None


def test_an_empty_message():
    message = parse(b"")
    assert is_automatic(message) is None
    assert reply_token(message) is None
    assert references(message) == []
    assert visible_text(message) == ""


# ---------------------------------------------------------------- threading


def test_reply_token_in_to():
    assert reply_token(mail()) == "abcdef123456"


def test_reply_token_in_cc_with_display_name():
    message = mail()
    message.replace_header("To", "someone@example.com")
    message["Cc"] = '"Collections" <ar+Tok_en-9876@collect.example>'
    assert reply_token(message) == "Tok_en-9876"


def test_reply_token_in_delivered_to():
    message = mail()
    message.replace_header("To", "ar@collect.example")
    message["Delivered-To"] = "ar+zzzzzzzz@collect.example"
    assert reply_token(message) == "zzzzzzzz"


@pytest.mark.parametrize(
    "address",
    [
        "ar+short@x.example",
        "ar@x.example",
        "ar+bad$token123@x.example",
        "ar+" + "a" * 65 + "@x.example",
    ],
)
def test_reply_token_rejects(address):
    message = mail()
    message.replace_header("To", address)
    assert reply_token(message) is None


def test_references_in_order_and_deduplicated():
    message = parse("In-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n <c@x>\r\n\r\nbody\r\n")
    assert references(message) == ["b@x", "a@x", "c@x"]


def test_references_ignore_garbage():
    assert references(mail({"References": "no brackets here"})) == []


# ---------------------------------------------------------------- visible_text


def test_plain_text_with_quoted_lines_cut():
    body = "We will pay Friday.\n> previous line\n>> older\nThanks"
    assert visible_text(mail(body=body)) == "We will pay Friday.\n\nThanks".replace("\n\n", "\n")


@pytest.mark.parametrize(
    "header",
    [
        "On Mon, 7 Dec 2026 at 10:00, Collections <ar@collect.example> wrote:",
        "Am 07.12.2026 um 10:00 schrieb Collections <ar@collect.example>:",
        "Le lun. 7 déc. 2026 à 10:00, Collections a écrit :",
        "El lun, 7 dic 2026 a las 10:00, Collections escribió:",
        "-----Original Message-----",
    ],
)
def test_history_after_a_reply_header_is_cut(header):
    body = f"Paid today.\n\n{header}\nDear customer, your invoice is overdue."
    assert visible_text(mail(body=body)) == "Paid today."


def test_outlook_from_sent_block_is_cut():
    body = "Paid.\n\nFrom: Collections <ar@x>\nSent: Monday\nTo: me\nSubject: overdue\n\nPay now"
    assert visible_text(mail(body=body)) == "Paid."


def test_a_from_line_without_sent_is_kept():
    body = "From: the accounting team\nwe paid"
    assert visible_text(mail(body=body)) == body


def test_html_only():
    message = EmailMessage()
    message.set_content(
        "<html><head><style>p{}</style><script>x()</script></head>"
        "<body><p>We&nbsp;pay <b>Friday</b></p>"
        "<blockquote>old quoted text</blockquote><div>Regards</div></body></html>",
        subtype="html",
    )
    text = visible_text(message)
    assert "We pay Friday" in text and "Regards" in text
    assert "old quoted" not in text and "x()" not in text and "p{}" not in text


def test_nested_multipart_prefers_plain():
    outer = EmailMessage()
    outer["Subject"] = "Re"
    outer.set_content("plain body here")
    outer.add_alternative("<p>html body</p>", subtype="html")
    outer.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="a.pdf")
    assert outer.get_content_type() == "multipart/mixed"
    assert visible_text(outer) == "plain body here"


def test_a_text_attachment_is_not_the_body():
    message = EmailMessage()
    message.set_content("<p>the html</p>", subtype="html")
    message.add_attachment("attached text", filename="notes.txt")
    assert visible_text(message) == "the html"


def test_a_five_megabyte_body_is_cut():
    message = mail(body="x" * 5_000_000)
    text = visible_text(message)
    assert 0 < len(text) <= 20_000


def test_a_five_megabyte_base64_body_is_cut():
    message = EmailMessage()
    message.set_content("é" * 2_500_000, cte="base64")
    text = visible_text(message)
    assert 0 < len(text) <= 20_000 and set(text) == {"é"}


def test_a_broken_charset_is_replaced_not_raised():
    raw = b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nCaf\xe9 paid\r\n"
    assert "paid" in visible_text(parse(raw))


def test_invalid_bytes_in_declared_charset():
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\nCaf\xe9 paid\r\n"
    assert visible_text(parse(raw)) == "Caf\ufffd paid"


def test_latin1_charset_is_honoured():
    raw = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9\r\n"
    )
    assert visible_text(parse(raw)) == "Café"


def test_quoted_printable():
    raw = (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 =\r\npaid\r\n"
    )
    assert visible_text(parse(raw)) == "Café paid"


# ---------------------------------------------------------------- extract_promise


def promise(text, currency="EUR", today=TODAY):
    return extract_promise(text, today=today, default_currency=currency)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We will pay on 15 March", datetime.date(2027, 3, 15)),
        ("We will pay on March 15th", datetime.date(2027, 3, 15)),
        ("payment by 2026-12-20", datetime.date(2026, 12, 20)),
        ("next Friday", datetime.date(2026, 12, 11)),
        ("next Monday", datetime.date(2026, 12, 14)),
        ("by the end of the month", datetime.date(2026, 12, 31)),
        ("Zahlung am 15.12.2026", datetime.date(2026, 12, 15)),
        ("nous payerons le 15 décembre", datetime.date(2026, 12, 15)),
        ("pagaremos el 15 de diciembre", datetime.date(2026, 12, 15)),
        ("bis zum 15. Dezember", datetime.date(2026, 12, 15)),
        ("bis 3. März 2027", datetime.date(2027, 3, 3)),
        ("wir zahlen nächsten Freitag", datetime.date(2026, 12, 11)),
        ("vendredi prochain", datetime.date(2026, 12, 11)),
        ("el próximo viernes", datetime.date(2026, 12, 11)),
        ("fin du mois", datetime.date(2026, 12, 31)),
        ("Ende des Monats", datetime.date(2026, 12, 31)),
        ("tomorrow", datetime.date(2026, 12, 8)),
        ("on 20/12/26", datetime.date(2026, 12, 20)),
    ],
)
def test_promised_dates(text, expected):
    result = promise(text)
    assert result is not None and result.promised_on == expected


def test_ambiguous_slash_date_is_day_first_in_euros():
    assert promise("we pay on 03/04/2027").promised_on == datetime.date(2027, 4, 3)


def test_ambiguous_slash_date_is_month_first_for_usd():
    assert promise("we pay on 03/04/2027", currency="USD").promised_on == datetime.date(2027, 3, 4)


def test_ambiguous_slash_date_is_month_first_with_a_dollar_sign():
    assert promise("$500 on 03/04/2027").promised_on == datetime.date(2027, 3, 4)


def test_dotted_date_is_always_day_first():
    assert promise("am 03.04.2027", currency="USD").promised_on == datetime.date(2027, 4, 3)


def test_unambiguous_slash_date_either_way():
    assert promise("on 12/25/2026").promised_on == datetime.date(2026, 12, 25)


@pytest.mark.parametrize(
    "text",
    ["paid on 2026-11-01", "on 2028-01-01", "no date here", "", "on 31.02.2027", "on 2026-13-40"],
)
def test_no_promise(text):
    assert promise(text) is None


def test_the_first_date_in_the_window_wins():
    assert promise("invoice of 2026-11-01, we pay 2026-12-20").promised_on == datetime.date(
        2026, 12, 20
    )


def test_a_date_without_year_in_the_past_rolls_to_next_year():
    assert promise("on 1 December").promised_on == datetime.date(2027, 12, 1)


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("EUR 1,250.00 on 2026-12-20", Decimal("1250.00"), "EUR"),
        ("1.250,00 € am 20.12.2026", Decimal("1250.00"), "EUR"),
        ("$500 next Friday", Decimal("500"), "USD"),
        ("500 USD next Friday", Decimal("500"), "USD"),
        ("£99.5 tomorrow", Decimal("99.5"), "GBP"),
        ("CHF 1'250.00 tomorrow", Decimal("1250.00"), "CHF"),
        ("1 250,50 EUR demain", Decimal("1250.50"), "EUR"),
    ],
)
def test_amounts(text, amount, currency):
    result = promise(text)
    assert (
        result.amount == amount
        and isinstance(result.amount, Decimal)
        and result.currency == currency
    )


def test_no_amount_uses_the_default_currency():
    assert promise("next Friday", currency="gbp") == Promise(
        datetime.date(2026, 12, 11), None, "GBP"
    )


def test_the_amount_nearest_the_date():
    text = "Invoice total EUR 9,999.00. We can pay EUR 500.00 on 2026-12-20."
    assert promise(text).amount == Decimal("500.00")


def test_promise_is_frozen():
    result = promise("tomorrow")
    with pytest.raises(AttributeError):
        result.amount = Decimal("1")


def test_a_huge_text_is_bounded():
    assert promise("x " * 3_000_000 + "tomorrow") is None


def test_leap_day_horizon():
    assert promise("on 2025-02-28", today=datetime.date(2024, 2, 29)).promised_on == datetime.date(
        2025, 2, 28
    )


# ---------------------------------------------------------------- mentions_dispute


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("We DISPUTE this invoice", "dispute"),
        ("the amount is incorrect", "incorrect"),
        ("wrong   amount charged", "wrong amount"),
        ("we never received the goods", "never received"),
        ("the parcel was damaged", "damaged"),
        ("we have not ordered this", "not ordered"),
        ("please send a credit note", "credit note"),
        ("Reklamation zur Rechnung", "Reklamation"),
        ("Die Rechnung ist falsch", "falsch"),
        ("Ware nicht erhalten", "nicht erhalten"),
        ("Ware beschadigt", "beschädigt"),
        ("facture en litige", "litige"),
        ("montant ERRONE", "erroné"),
        ("nous n'avons pas recu la marchandise", "pas reçu"),
        ("presentamos una reclamacion", "reclamación"),
        ("importe incorrecto", "incorrecto"),
        ("pedido no recibido", "no recibido"),
    ],
)
def test_dispute_words(text, word):
    assert word in mentions_dispute(text)


@pytest.mark.parametrize(
    "text",
    ["", "We will pay on Friday, thanks", "indisputable", "disputes", "falschgeld", "credit notes"],
)
def test_no_dispute_words(text):
    assert mentions_dispute(text) == []


def test_several_words_in_list_order():
    assert mentions_dispute("Damaged goods, and the amount is incorrect.") == [
        "incorrect",
        "damaged",
    ]


# ---------------------------------------------------------------- more realistic replies


def test_a_parsed_null_return_path_is_a_bounce():
    assert is_automatic(parse(b"Return-Path: <>\r\nFrom: x@example.com\r\n\r\nhi")) == (
        "null return-path"
    )


def test_a_reply_header_wrapped_over_two_lines_is_cut():
    raw = (
        b"Content-Type: text/plain\r\n\r\nOk paid.\r\n\r\n"
        b"On Mon, 7 Dec 2026 at 10:00, Collections <ar@x>\r\nwrote:\r\n> old\r\n"
    )
    assert visible_text(parse(raw)) == "Ok paid."


def test_a_german_outlook_block_is_cut():
    raw = b"Content-Type: text/plain\r\n\r\nBezahlt.\r\n\r\nVon: AR\r\nGesendet: Mo\r\n\r\nalt\r\n"
    assert visible_text(parse(raw)) == "Bezahlt."


def test_a_parsed_five_megabyte_body_is_cut():
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"y" * 5_000_000
    assert len(visible_text(parse(raw))) == 20_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "We'll transfer 2.500,00 EUR on 1st January",
            Promise(datetime.date(2027, 1, 1), Decimal("2500.00"), "EUR"),
        ),
        (
            "Payment of USD 1,000 by 01/15/2027",
            Promise(datetime.date(2027, 1, 15), Decimal("1000"), "USD"),
        ),
        (
            "Nous paierons 300 € le 1er février",
            Promise(datetime.date(2027, 2, 1), Decimal("300"), "EUR"),
        ),
        (
            "Pagaremos 1.000 € el 10 de enero de 2027",
            Promise(datetime.date(2027, 1, 10), Decimal("1000"), "EUR"),
        ),
        (
            "Wir zahlen am 20. Dezember 2026 den Betrag von 750,00 EUR",
            Promise(datetime.date(2026, 12, 20), Decimal("750.00"), "EUR"),
        ),
    ],
)
def test_whole_promises(text, expected):
    assert promise(text) == expected


def test_german_dispute_sentence():
    text = "Die Ware ist beschädigt und die Rechnung falsch; wir haben sie nicht erhalten"
    assert mentions_dispute(text) == ["falsch", "nicht erhalten", "beschädigt"]
