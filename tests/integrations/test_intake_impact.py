"""The dead-letter and source-health pages rank failures by impact: money at stake and
invoices blocked first; a failing source says since when it fails and how much waits."""

import datetime as dt
import io
from decimal import Decimal

import pytest

from integrations.gateways.events import event_at_stake
from integrations.intake import batches, health, spreadsheets
from integrations.models import ImportProfile, Rejection, SourceHealth
from tests.clock import NOW

pytestmark = pytest.mark.django_db

INVOICES = "Invoice Number,Customer,Phone,Country,Invoice Date,Due Date,Currency,Amount\n"
DEAD_LETTER = "/admin/integrations/rejection/"


def load_invoices(rows: str):
    return spreadsheets.import_invoices(
        io.BytesIO((INVOICES + rows).encode()),
        filename="invoices.csv",
        profile=ImportProfile.objects.get(name="generic-csv"),
    )


def load_payments(rows: str):
    return spreadsheets.import_spreadsheet(
        io.BytesIO(("external_id,amount,currency,received_on,method\n" + rows).encode()),
        kind="payments",
        filename="payments.csv",
    )


def stakes() -> dict[int, tuple]:
    return {
        r.row_number: (r.amount, r.currency, r.invoices_blocked) for r in Rejection.objects.all()
    }


def test_rejected_invoice_rows_record_the_amount_at_stake_and_the_invoice_blocked():
    ImportProfile.objects.filter(name="generic-csv").update(warn_only=[])
    load_invoices(
        'INV-1,Acme,,US,31/02/2026,2026-10-31,USD,"5,000.00"\n'  # bad date: parser
        "INV-2,Acme,,US,2026-10-01,2026-10-31,USD,five\n"  # bad amount: nothing to stake
        "INV-3,Bolt,12,US,2026-10-01,2026-10-31,EUR,20.00\n"  # bad phone: upserter
    )

    assert stakes() == {
        2: (Decimal("5000.00"), "USD", 1),
        3: (None, "", 1),
        4: (Decimal("20.00"), "EUR", 1),
    }


def test_rejected_payment_rows_put_their_cash_at_stake_and_block_no_invoice():
    load_payments("P-1,9000.00,USD,2026-11-20,telepathy\n")

    assert stakes() == {2: (Decimal("9000.00"), "USD", 0)}


def test_dead_letter_list_puts_the_most_money_first_then_invoices_blocked(client, finance):
    ImportProfile.objects.filter(name="generic-csv").update(warn_only=[])
    load_invoices(
        "INV-1,Acme,,US,31/02/2026,2026-10-31,USD,20.00\n"
        "INV-2,Acme,,US,2026-10-01,2026-10-31,USD,five\n"
        'INV-3,Acme,,US,31/02/2026,2026-10-31,USD,"5,000.00"\n'
    )
    load_payments("P-1,20.00,USD,2026-11-20,telepathy\n")
    client.force_login(finance)

    page = client.get(DEAD_LETTER, {"status__exact": "open"})

    ranked = [(r.amount, r.invoices_blocked) for r in page.context["cl"].result_list]
    assert ranked == [
        (Decimal("5000.00"), 1),
        (Decimal("20.00"), 1),  # an invoice blocked beats cash of the same amount
        (Decimal("20.00"), 0),
        (None, 1),
    ]
    html = page.content.decode()
    assert 'id="waiting-by-source"' in html and "USD 5,000.00" in html


def test_waiting_by_source_ranks_sources_by_money_then_invoices_and_never_adds_currencies():
    ImportProfile.objects.filter(name="generic-csv").update(warn_only=[])
    load_invoices(
        "INV-1,Acme,,US,31/02/2026,2026-10-31,USD,100.00\n"
        "INV-2,Acme,,US,31/02/2026,2026-10-31,EUR,300.00\n"
    )
    load_payments("P-1,250.00,USD,2026-11-20,telepathy\n")

    waiting = health.waiting_by_source()

    assert [w.source for w in waiting] == ["spreadsheet"]
    spreadsheet = waiting[0]
    assert (spreadsheet.rows, spreadsheet.invoices_blocked) == (3, 2)
    assert spreadsheet.amounts_shown() == [("USD", Decimal("350.00")), ("EUR", Decimal("300.00"))]
    assert spreadsheet.since is not None


def test_a_failing_source_says_since_when_until_it_succeeds(clock):
    batches.record_failure("bank_statement", "timeout")
    clock.shift(dt.timedelta(hours=2))
    batches.record_failure("bank_statement", "timeout again")

    failing = SourceHealth.objects.get(source="bank_statement")
    assert abs(failing.failing_since - NOW) < dt.timedelta(seconds=5)  # the first failure
    assert failing.last_failure_at - failing.failing_since >= dt.timedelta(hours=2)

    batches.record_success("bank_statement")
    failing.refresh_from_db()
    assert failing.failing_since is None and failing.consecutive_failures == 0


def test_source_health_page_shows_since_when_and_what_waits(client, finance, settings):
    settings.INTAKE_FAILING_AFTER = 1
    ImportProfile.objects.filter(name="generic-csv").update(warn_only=[])
    load_invoices("INV-1,Acme,,US,31/02/2026,2026-10-31,USD,1234.50\n")
    batches.record_failure("spreadsheet", "the share is offline")
    client.force_login(finance)

    page = client.get("/admin/integrations/sourcehealth/").content.decode()

    assert "failing" in page and "Failing since" in page
    assert "1 rows, 1 invoices blocked; USD 1,234.50" in page


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"id": "e", "amount": "12.50", "currency": "usd"}, (Decimal("12.50"), "USD")),
        ({"id": "e", "amount": "lots", "currency": "USD"}, None),
        (
            {"data": {"object": {"amount_received": 1250, "currency": "eur"}}},
            (Decimal("12.50"), "EUR"),
        ),
        ({"data": {"object": {"amount": 500, "currency": "jpy"}}}, (Decimal("500.00"), "JPY")),
        ({"data": {"object": {"amount": "500", "currency": "jpy"}}}, None),
        (["not", "an", "object"], None),
    ],
)
def test_a_refused_event_carries_its_amount_at_stake(payload, expected):
    assert event_at_stake(payload) == expected
