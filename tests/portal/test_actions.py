"""The debtor's portal actions (portal/actions.py): promise, dispute, plan, preferences."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Activity, Contact, Invoice
from cases.models import Dispute, PaymentPlan, PromiseToPay, Task
from dunning import holds
from portal import actions
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.PORTAL_PROMISE_MAX_DAYS = 30
    settings.PORTAL_PROMISE_MIN_SHARE = "0.5"
    settings.PORTAL_PLAN_MAX_INSTALLMENTS = 6
    settings.PORTAL_PLAN_MIN_INSTALLMENT = "50"
    settings.PORTAL_PLAN_FIRST_DUE_MAX_DAYS = 30
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "5000"
    settings.PORTAL_UPLOAD_MAX_BYTES = 1024
    settings.PORTAL_UPLOAD_MAX_FILES = 2


@pytest.fixture
def debtor():
    agent = UserFactory(username="their-agent", role="Collections agent")
    customer = CustomerFactory(name="Owes Money SARL", language="fr", assigned_agent=agent)
    contact = ContactFactory(customer=customer, is_primary=True, email="ap@owes.example")
    first = InvoiceFactory(customer=customer, number="INV-1", amount=Decimal("600.00"))
    second = InvoiceFactory(customer=customer, number="INV-2", amount=Decimal("400.00"))
    return customer, contact, first, second


@pytest.fixture
def stranger():
    return InvoiceFactory(number="INV-OTHER", amount=Decimal("900.00"))


def refusals(excinfo) -> dict:
    return excinfo.value.message_dict


# --- 1. Promise ---------------------------------------------------------------------------


def test_promise_holds_dunning_like_an_agents_promise_and_says_portal(debtor):
    customer, contact, first, second = debtor
    promise = actions.promise_to_pay(
        customer=customer,
        contact=contact,
        invoice_ids=[first.pk, second.pk],
        amount=Decimal("800.00"),
        promised_on=ON + dt.timedelta(days=10),
        today=ON,
    )
    assert promise.status == PromiseToPay.Status.OPEN
    assert promise.channel == Activity.Channel.PORTAL
    assert promise.recorded_by is None
    assert set(promise.invoices.all()) == {first, second}
    assert promise.holds_until == ON + dt.timedelta(days=10 + 3)
    held = holds.invoice_holds([first, second], ON + dt.timedelta(days=5))
    assert set(held) == {first.pk, second.pk}
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PROMISE)
    assert entry.channel == Activity.Channel.PORTAL
    assert contact.name in entry.text
    assert entry.text.startswith("Promise to pay USD 800.00")  # console language, not fr


def test_promise_beyond_the_portal_limit_names_the_date_field(debtor):
    customer, contact, first, _second = debtor
    with pytest.raises(ValidationError) as excinfo:
        actions.promise_to_pay(
            customer=customer,
            contact=contact,
            invoice_ids=[first.pk],
            amount=Decimal("600.00"),
            promised_on=ON + dt.timedelta(days=31),
            today=ON,
        )
    assert list(refusals(excinfo)) == ["promised_on"]
    assert "30 days" in refusals(excinfo)["promised_on"][0]
    assert not PromiseToPay.objects.exists()


def test_promise_in_the_past_or_missing_date_is_refused(debtor):
    customer, contact, first, _second = debtor
    for day in (ON - dt.timedelta(days=1), None):
        with pytest.raises(ValidationError) as excinfo:
            actions.promise_to_pay(
                customer=customer,
                contact=contact,
                invoice_ids=[first.pk],
                amount=Decimal("600.00"),
                promised_on=day,
                today=ON,
            )
        assert list(refusals(excinfo)) == ["promised_on"]


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (Decimal("299.99"), "at least USD 300.00"),
        (Decimal("600.01"), "more than the USD 600.00"),
        (Decimal("0"), "more than zero"),
        (None, "how much"),
    ],
)
def test_promise_amount_outside_share_and_balance_names_the_amount(debtor, amount, words):
    customer, contact, first, _second = debtor
    with pytest.raises(ValidationError) as excinfo:
        actions.promise_to_pay(
            customer=customer,
            contact=contact,
            invoice_ids=[first.pk],
            amount=amount,
            promised_on=ON + dt.timedelta(days=5),
            today=ON,
        )
    assert list(refusals(excinfo)) == ["amount"]
    assert words in refusals(excinfo)["amount"][0]


def test_promise_at_exactly_the_minimum_share_is_accepted(debtor):
    customer, contact, first, _second = debtor
    promise = actions.promise_to_pay(
        customer=customer,
        contact=contact,
        invoice_ids=[first.pk],
        amount=Decimal("300.00"),
        promised_on=ON + dt.timedelta(days=30),
        today=ON,
    )
    assert promise.amount == Decimal("300.00")


def test_a_foreign_invoice_is_answered_like_an_unknown_one(debtor, stranger):
    customer, contact, first, _second = debtor
    answers = []
    for ids in ([first.pk, stranger.pk], [first.pk, 10**9], ["x"]):
        with pytest.raises(ValidationError) as excinfo:
            actions.promise_to_pay(
                customer=customer,
                contact=contact,
                invoice_ids=ids,
                amount=Decimal("600.00"),
                promised_on=ON + dt.timedelta(days=5),
                today=ON,
            )
        answers.append(refusals(excinfo))
    assert answers[0] == answers[1] == answers[2] == {"invoices": ["Choose among your invoices."]}
    assert "INV-OTHER" not in str(answers)
    assert not PromiseToPay.objects.exists()


def test_a_second_promise_on_the_same_invoice_is_refused(debtor):
    customer, contact, first, _second = debtor
    values = {
        "customer": customer,
        "contact": contact,
        "invoice_ids": [first.pk],
        "amount": Decimal("600.00"),
        "promised_on": ON + dt.timedelta(days=5),
        "today": ON,
    }
    actions.promise_to_pay(**values)
    with pytest.raises(ValidationError) as excinfo:
        actions.promise_to_pay(**values)
    assert refusals(excinfo) == {"invoices": ["You have already promised to pay INV-1."]}


def test_a_paid_invoice_cannot_be_promised(debtor):
    customer, contact, first, _second = debtor
    Invoice.objects.filter(pk=first.pk).update(status=Invoice.Status.PAID, open_balance=0)
    with pytest.raises(ValidationError) as excinfo:
        actions.promise_to_pay(
            customer=customer,
            contact=contact,
            invoice_ids=[first.pk],
            amount=Decimal("10.00"),
            promised_on=ON + dt.timedelta(days=5),
            today=ON,
        )
    assert refusals(excinfo) == {"invoices": ["Invoice INV-1 is paid."]}


def test_a_statement_link_without_contact_can_promise(debtor):
    customer, _contact, first, _second = debtor
    promise = actions.promise_to_pay(
        customer=customer,
        contact=None,
        invoice_ids=[first.pk],
        amount=Decimal("600.00"),
        promised_on=ON,
        today=ON,
    )
    assert "statement link" in promise.note


# --- 2. Dispute ---------------------------------------------------------------------------


def test_dispute_holds_the_invoices_keeps_the_files_and_gives_the_agent_a_task(debtor):
    customer, contact, first, second = debtor
    dispute = actions.open_dispute(
        customer=customer,
        contact=contact,
        invoice_ids=[first.pk],
        reason=Dispute.Reason.NOT_RECEIVED,
        message="The goods never arrived.",
        attachments=[
            SimpleUploadedFile("delivery note.pdf", PDF, content_type="application/pdf"),
            SimpleUploadedFile("photo.JPG", JPEG, content_type="image/jpeg"),
        ],
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Invoice.Status.DISPUTED
    assert second.status == Invoice.Status.OPEN
    assert dispute.description == "The goods never arrived."
    assert dispute.owner == customer.assigned_agent
    task = Task.objects.get(source=f"portal:dispute:{dispute.pk}")
    assert task.assignee == customer.assigned_agent
    assert task.kind == Task.Kind.REVIEW
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PORTAL)
    assert entry.channel == Activity.Channel.PORTAL
    assert entry.details["dispute"] == dispute.pk
    files = entry.details["attachments"]
    assert [f["name"] for f in files] == ["delivery note.pdf", "photo.JPG"]
    assert [f["content_type"] for f in files] == ["application/pdf", "image/jpeg"]
    with default_storage.open(files[0]["path"]) as stored:
        assert stored.read() == PDF
    assert "delivery note.pdf" in entry.text
    assert Activity.objects.filter(customer=customer, kind=Activity.Kind.DISPUTE).count() == 1


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("invoice.pdf", b"MZ\x90\x00\x03\x00\x00\x00", "not a PDF, PNG, JPEG or plain text"),
        ("photo.pdf", PNG, "holds a PNG file; name it .png"),
        ("notes.txt", b"line\x00with a nul", "not a PDF, PNG, JPEG or plain text"),
        ("big.pdf", PDF + b"x" * 1024, "are accepted"),
        ("empty.txt", b"", "is empty"),
    ],
)
def test_attachments_are_checked_by_content_size_and_name(debtor, name, content, words):
    customer, contact, first, _second = debtor
    with pytest.raises(ValidationError) as excinfo:
        actions.open_dispute(
            customer=customer,
            contact=contact,
            invoice_ids=[first.pk],
            reason=Dispute.Reason.QUALITY,
            message="Broken on arrival.",
            attachments=[SimpleUploadedFile(name, content, content_type="application/pdf")],
        )
    assert list(refusals(excinfo)) == ["attachments"]
    assert name in refusals(excinfo)["attachments"][0]
    assert words in refusals(excinfo)["attachments"][0]
    assert not Dispute.objects.exists()
    first.refresh_from_db()
    assert first.status == Invoice.Status.OPEN


def test_plain_text_in_utf8_is_accepted_and_too_many_files_refused(debtor):
    text = SimpleUploadedFile("notes.txt", "Lieferung fehlt, bitte prüfen\n".encode())
    assert [a.content_type for a in actions.check_attachments([text])] == ["text/plain"]
    files = [SimpleUploadedFile(f"n{i}.txt", b"hello") for i in range(3)]
    with pytest.raises(ValidationError) as excinfo:
        actions.check_attachments(files)
    assert refusals(excinfo) == {"attachments": ["Attach at most 2 files; you chose 3."]}


def test_dispute_needs_a_reason_a_message_and_an_invoice_not_already_disputed(debtor, stranger):
    customer, contact, first, _second = debtor
    with pytest.raises(ValidationError) as excinfo:
        actions.open_dispute(
            customer=customer,
            contact=contact,
            invoice_ids=[stranger.pk],
            reason="because",
            message="  ",
        )
    assert set(refusals(excinfo)) == {"invoices", "reason", "message"}
    actions.open_dispute(
        customer=customer,
        contact=contact,
        invoice_ids=[first.pk],
        reason=Dispute.Reason.PRICING,
        message="Wrong price.",
    )
    with pytest.raises(ValidationError) as excinfo:
        actions.open_dispute(
            customer=customer,
            contact=contact,
            invoice_ids=[first.pk],
            reason=Dispute.Reason.PRICING,
            message="Wrong price, again.",
        )
    assert "already under dispute" in refusals(excinfo)["invoices"][0]
    assert Dispute.objects.count() == 1
    stranger.refresh_from_db()
    assert stranger.status == Invoice.Status.OPEN


# --- 3. Payment plan ----------------------------------------------------------------------


def test_a_plan_within_the_rules_is_active_at_once(debtor):
    customer, contact, first, second = debtor
    asked = actions.ask_for_plan(
        customer=customer,
        contact=contact,
        invoice_ids=[first.pk, second.pk],
        installments=4,
        first_due_on=ON + dt.timedelta(days=7),
        today=ON,
    )
    plan = asked.plan
    assert asked.is_accepted and asked.reasons == []
    assert plan.status == PaymentPlan.Status.ACTIVE
    assert plan.total_amount == Decimal("1000.00")
    assert [i.amount for i in plan.installments.order_by("sequence")] == [Decimal("250.00")] * 4
    assert plan.installments.order_by("sequence").first().due_on == ON + dt.timedelta(days=7)
    assert not Task.objects.filter(kind=Task.Kind.APPROVAL).exists()
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PORTAL)
    assert entry.details["plan"] == plan.pk and "accepted" in entry.text
    assert set(holds.invoice_holds([first, second], ON)) == {first.pk, second.pk}


@pytest.mark.parametrize(
    ("count", "amount", "threshold", "reason"),
    [
        (7, Decimal("1000.00"), "5000", "more than 6 installments"),
        (3, Decimal("120.00"), "5000", "installments under USD 50.00"),
        (2, Decimal("6000.00"), "5000", "a total above USD 5,000.00"),
    ],
)
def test_a_plan_outside_the_rules_waits_for_a_manager(
    debtor, settings, count, amount, threshold, reason
):
    customer, contact, first, _second = debtor
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = threshold
    Invoice.objects.filter(pk=first.pk).update(amount=amount, open_balance=amount)
    asked = actions.ask_for_plan(
        customer=customer,
        contact=contact,
        invoice_ids=[first.pk],
        installments=count,
        first_due_on=ON + dt.timedelta(days=1),
        today=ON,
    )
    assert not asked.is_accepted
    assert reason in asked.reasons
    assert asked.plan.status == PaymentPlan.Status.PROPOSED
    task = Task.objects.get(kind=Task.Kind.APPROVAL, details__plan=asked.plan.pk)
    assert task.assignee is None  # the managers' unassigned queue, as propose_plan does
    plan_entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PAYMENT_PLAN)
    assert reason in plan_entry.text


def test_plan_request_is_refused_field_by_field(debtor, stranger):
    customer, contact, first, _second = debtor
    with pytest.raises(ValidationError) as excinfo:
        actions.ask_for_plan(
            customer=customer,
            contact=contact,
            invoice_ids=[stranger.pk],
            installments=0,
            first_due_on=ON + dt.timedelta(days=31),
            today=ON,
        )
    assert set(refusals(excinfo)) == {"invoices", "installments", "first_due_on"}
    actions.ask_for_plan(
        customer=customer,
        contact=contact,
        invoice_ids=[first.pk],
        installments=2,
        first_due_on=ON,
        today=ON,
    )
    with pytest.raises(ValidationError) as excinfo:
        actions.ask_for_plan(
            customer=customer,
            contact=contact,
            invoice_ids=[first.pk],
            installments=2,
            first_due_on=ON,
            today=ON,
        )
    assert refusals(excinfo) == {"invoices": ["INV-1 is already in a payment plan."]}


# --- 4. Preferences -----------------------------------------------------------------------


def test_preferences_change_and_the_timeline_lists_them_masked(debtor):
    customer, contact, _first, _second = debtor
    changed = actions.update_preferences(
        customer=customer,
        contact=contact,
        language="de",
        preferred_channel=Contact.Channel.SMS,
        email="accounts.payable@owes.example",
        phone="+33 1 42 68 53 00",
        opted_out=["email"],
    )
    assert set(changed) == {"language", "preferred_channel", "email", "phone", "email_opted_out"}
    customer.refresh_from_db()
    contact.refresh_from_db()
    assert customer.language == "de"
    assert contact.preferred_channel == "sms"
    assert contact.email == "accounts.payable@owes.example"
    assert contact.phone == "+33142685300"
    assert contact.email_opted_out_at is not None
    assert contact.email_opt_out_source == "portal"
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PORTAL)
    assert "accounts.payable" not in entry.text and "accounts.payable" not in str(entry.details)
    assert "ap@owes" not in entry.text
    assert "a***@owes.example" in entry.text
    assert "+33142685300" not in entry.text and "***300" in entry.text
    assert "language fr → de" in entry.text and "opted out of e-mail" in entry.text
    assert entry.details["changed"] == changed
    # Where links and codes go changed: the agent checks it was the debtor.
    task = Task.objects.get(customer=customer, source__startswith="portal:contact-details:")
    assert "accounts.payable" not in task.title and "a***@owes.example" in task.title


def test_opting_back_in_clears_the_opt_out_and_nothing_changed_writes_nothing(debtor):
    customer, contact, _first, _second = debtor
    Contact.objects.filter(pk=contact.pk).update(
        sms_opted_out_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), sms_opt_out_source="SMS STOP"
    )
    contact.refresh_from_db()
    changed = actions.update_preferences(
        customer=customer, contact=contact, language="fr", opted_out=[]
    )
    assert changed == ["sms_opted_out"]
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is None and contact.sms_opt_out_source == ""
    assert "opted back in to SMS" in Activity.objects.get(kind=Activity.Kind.PORTAL).text
    assert actions.update_preferences(customer=customer, contact=contact, language="fr") == []
    assert Activity.objects.filter(kind=Activity.Kind.PORTAL).count() == 1
    assert not Task.objects.filter(customer=customer).exists()  # an opt-out needs nobody


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"email": "not an address"}, "email"),
        ({"email": ""}, "email"),
        ({"language": "it"}, "language"),
        ({"preferred_channel": "fax"}, "preferred_channel"),
        ({"preferred_channel": "sms", "phone": ""}, "preferred_channel"),
        ({"preferred_channel": "email", "opted_out": ["email"]}, "preferred_channel"),
        ({"opted_out": ["pigeon"]}, "opted_out"),
    ],
)
def test_bad_preferences_name_the_field_and_change_nothing(debtor, values, field):
    customer, contact, _first, _second = debtor
    with pytest.raises(ValidationError) as excinfo:
        actions.update_preferences(
            customer=customer, contact=contact, **({"language": "fr"} | values)
        )
    assert list(refusals(excinfo)) == [field]
    contact.refresh_from_db()
    assert contact.email == "ap@owes.example"
    assert not Activity.objects.filter(kind=Activity.Kind.PORTAL).exists()


def test_without_a_contact_only_the_language_changes(debtor):
    customer, _contact, _first, _second = debtor
    assert actions.update_preferences(customer=customer, contact=None, language="es") == [
        "language"
    ]
    customer.refresh_from_db()
    assert customer.language == "es"
    entry = Activity.objects.get(kind=Activity.Kind.PORTAL)
    assert entry.details["contact_id"] is None and "language fr → es" in entry.text


def test_a_contact_without_e_mail_may_keep_none_but_not_prefer_e_mail(debtor):
    customer, contact, _first, _second = debtor
    Contact.objects.filter(pk=contact.pk).update(email="")
    contact.refresh_from_db()
    changed = actions.update_preferences(
        customer=customer, contact=contact, language="fr", email="", preferred_channel="sms"
    )
    assert changed == ["preferred_channel"]
    with pytest.raises(ValidationError) as excinfo:
        actions.update_preferences(
            customer=customer, contact=contact, language="fr", email="", preferred_channel="email"
        )
    assert list(refusals(excinfo)) == ["preferred_channel"]
