"""Finance in a real browser: a spreadsheet with bad rows through preview and confirm, then
a rejected row corrected and loaded."""

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Invoice
from integrations.models import IntakeBatch, Rejection
from tests.browser import selectors as s
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# Five invoices for the generic CSV profile; INV-BAD-AMOUNT and INV-BAD-DATE are refused.
INVOICES_CSV = """\
Invoice Number,Customer ID,Customer Name,Invoice Date,Due Date,Currency,Amount
INV-F-1,CF-1,Atlas Foods SA,2026-10-01,2026-10-31,EUR,1200.00
INV-F-2,CF-1,Atlas Foods SA,2026-10-05,2026-11-04,EUR,300.50
INV-BAD-AMOUNT,CF-2,Bergmann GmbH,2026-10-07,2026-11-06,EUR,12x.00
INV-BAD-DATE,CF-2,Bergmann GmbH,2026-10-09,2026-13-45,EUR,80.00
INV-F-3,CF-3,Corvo Ltd,2026-10-10,2026-11-09,GBP,99.99
"""


def test_finance_imports_a_spreadsheet_with_bad_rows_and_corrects_one(console, tmp_path):
    finance = UserFactory(username="finance", role="Finance")
    device = TOTPDevice.objects.create(user=finance, name="default", confirmed=True)
    upload = tmp_path / "october-invoices.csv"
    upload.write_text(INVOICES_CSV)

    console.log_in(finance, device)
    console.visit(s.IMPORT_INVOICES_URL)
    console.set(s.IMPORT_FILE, upload)
    console.submit(s.IMPORT_PREVIEW)
    assert "nothing has been written yet" in console.text
    assert "INV-BAD-AMOUNT" in console.text
    console.shot("finance-import-preview")
    # A preview writes nothing: no batch, no rejected row, no invoice.
    assert (IntakeBatch.objects.count(), Rejection.objects.count(), Invoice.objects.count()) == (
        0,
        0,
        0,
    )

    console.submit(s.IMPORT_CONFIRM)
    assert console.has(s.MESSAGE_DONE), console.text[:800]
    batch = IntakeBatch.objects.get()
    assert batch.counts()["created"] == 3 and batch.counts()["rejected"] == 2
    console.shot("finance-import-batch")

    rejected = Rejection.objects.get(batch=batch, raw__contains={"Amount": "12x.00"})
    console.visit(s.REJECTION_URL.format(id=rejected.pk))
    console.click(s.LINK_RETRY, id=rejected.pk)
    console.shot("finance-correct-rejected-row")
    amount = console.find("input[value='12x.00']")
    amount.clear()
    amount.send_keys("120.00")
    console.submit(s.RETRY_SUBMIT)
    assert console.has(s.MESSAGE_DONE), console.text[:800]
    rejected.refresh_from_db()
    assert rejected.status != Rejection.Status.OPEN
    assert str(Invoice.objects.get(number="INV-BAD-AMOUNT").amount) == "120.00"
