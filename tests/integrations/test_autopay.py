"""Automatic payment (integrations/gateways/autopay.py): set-up through Stripe Checkout in
setup mode and the signed webhook, daily charges with retries, SEPA's processing state,
cancel from the console, and nothing at all without a Stripe key. Stripe is faked at the
library's edge (its create/retrieve calls), as the pay page tests do."""

import datetime as dt
import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest
import stripe
from django.contrib.auth.models import Permission
from django.core import mail

from accounts.models import Activity, Invoice, Payment
from cases.models import Dispute, PromiseToPay, Task
from dunning.models import Notice
from integrations import tasks
from integrations.gateways import autopay
from integrations.models import AutopayCharge, AutopayMandate
from tests.clock import NOW, ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
SECRET = "whsec_test_secret"
URL = "/integrations/stripe/webhook/"
D = Decimal


@pytest.fixture(autouse=True)
def configured(settings):
    settings.STRIPE_API_KEY = "sk_test_autopay"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://collections.example.com"
    settings.AUTOPAY_PAYMENT_METHOD_TYPES = ["card", "sepa_debit"]
    settings.AUTOPAY_RETRY_DAYS = [1, 3, 7]
    settings.AUTOPAY_CHARGE_OVERDUE = True


def obj(values: dict):
    return stripe.StripeObject.construct_from(values, "sk_test_autopay")


class FakeStripe:
    """Stripe's calls this code makes, answered like Stripe (an idempotency key seen
    again returns the first answer) and recorded."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, dict]] = []
        self.intents: dict[str, object] = {}
        self.answers: list = []  # what PaymentIntent.create answers next (dicts or errors)
        self.setup_intents: dict[str, dict] = {}
        fake = self

        def session_create(**params):
            fake.calls.append(("session", params))
            return obj({"id": "cs_setup_1", "url": "https://checkout.stripe.com/c/pay/cs_setup_1"})

        def customer_create(**params):
            fake.calls.append(("customer", params))
            return obj({"id": "cus_1"})

        def setup_retrieve(intent_id, **params):
            fake.calls.append(("setup_intent", {"id": intent_id, **params}))
            return obj(fake.setup_intents[intent_id])

        def intent_create(**params):
            key = params["idempotency_key"]
            fake.calls.append(("payment_intent", params))
            if key in fake.intents:
                answer = fake.intents[key]
            else:
                answer = fake.answers.pop(0) if fake.answers else "succeeded"
                fake.intents[key] = answer
            if isinstance(answer, Exception):
                raise answer
            status = answer
            return obj(
                {
                    "id": f"pi_{key.replace(':', '_')}",
                    "object": "payment_intent",
                    "amount": params["amount"],
                    "amount_received": params["amount"] if status == "succeeded" else 0,
                    "currency": params["currency"],
                    "status": status,
                    "metadata": params["metadata"],
                    "last_payment_error": (
                        {"message": "Your card was declined."}
                        if status == "requires_payment_method"
                        else None
                    ),
                }
            )

        monkeypatch.setattr(stripe.checkout.Session, "create", session_create)
        monkeypatch.setattr(stripe.Customer, "create", customer_create)
        monkeypatch.setattr(stripe.SetupIntent, "retrieve", setup_retrieve)
        monkeypatch.setattr(stripe.PaymentIntent, "create", intent_create)

    def named(self, name):
        return [params for call, params in self.calls if call == name]


@pytest.fixture
def fake_stripe(monkeypatch):
    return FakeStripe(monkeypatch)


@pytest.fixture
def debtor():
    customer = CustomerFactory(external_ref="CUST-9", language="en", timezone="Europe/Berlin")
    contact = ContactFactory(customer=customer, name="Dana", email="dana@acme.example")
    return customer, contact


def mandate_for(customer, contact, *, method_type="card", display="Visa •••• 4242", **fields):
    return AutopayMandate.objects.create(
        customer=customer,
        contact=contact,
        stripe_customer_id="cus_1",
        payment_method_id=f"pm_{method_type}",
        setup_intent_id=f"seti_{customer.pk}_{method_type}_{AutopayMandate.objects.count()}",
        method_type=method_type,
        display=display,
        **fields,
    )


def invoice_for(customer, *, due_on=ON, amount="100.00", currency="EUR", number=None):
    return InvoiceFactory(
        customer=customer,
        amount=D(amount),
        currency=currency,
        due_on=due_on,
        issued_on=due_on - dt.timedelta(days=30),
        **({"number": number} if number else {}),
    )


def sign(payload: str) -> str:
    timestamp = int(time.time())
    signature = hmac.new(
        SECRET.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={signature}"


def post(client, event_type, values, event_id=None):
    """Deliver a signed Stripe event, then let a worker apply it (commit hooks run)."""
    now = int(time.time())
    payload = json.dumps(
        {
            "id": event_id or f"evt_{event_type}_{values.get('id')}",
            "object": "event",
            "type": event_type,
            "created": now,
            "data": {"object": {"created": now, **values}},
        }
    )
    response = client.post(
        URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload)
    )
    assert response.status_code in (200, 202), response.content
    tasks.sweep_inbox(older_than_seconds=0)
    return response


def sent(kind):
    return Notice.objects.filter(step__name=kind, status=Notice.Status.SENT)


# --- set-up -------------------------------------------------------------------------------


def test_start_setup_opens_checkout_in_setup_mode_for_the_configured_methods(fake_stripe, debtor):
    customer, contact = debtor
    url = autopay.start_setup(customer, contact, "https://portal.example.com/portal/autopay/")
    assert url == "https://checkout.stripe.com/c/pay/cs_setup_1"
    (session,) = fake_stripe.named("session")
    assert session["mode"] == "setup"
    assert session["customer"] == "cus_1"
    assert session["payment_method_types"] == ["card", "sepa_debit"]
    assert session["metadata"]["autopay_customer"] == str(customer.pk)
    assert session["setup_intent_data"]["metadata"]["autopay_contact"] == str(contact.pk)
    assert session["success_url"].endswith("/portal/autopay/?autopay=done")
    assert Activity.objects.filter(customer=customer, kind=Activity.Kind.PORTAL).exists()


def test_start_setup_refuses_a_contact_of_another_customer(fake_stripe, debtor):
    customer, _contact = debtor
    stranger = ContactFactory()
    with pytest.raises(Exception, match="contact"):
        autopay.start_setup(customer, stranger, "https://portal.example.com/")
    assert fake_stripe.calls == []


def test_without_a_stripe_key_autopay_is_unavailable(settings, fake_stripe, debtor):
    settings.STRIPE_API_KEY = ""
    customer, contact = debtor
    mandate_for(customer, contact)
    invoice_for(customer)
    assert not autopay.is_available()
    with pytest.raises(autopay.AutopayUnavailable):
        autopay.start_setup(customer, contact, "https://portal.example.com/")
    assert autopay.charge_due(on=ON).charges == []
    assert fake_stripe.calls == []


def setup_intent(customer, contact, intent_id="seti_1", last4="4242"):
    return {
        "id": intent_id,
        "object": "setup_intent",
        "status": "succeeded",
        "customer": "cus_1",
        "metadata": {"autopay_customer": str(customer.pk), "autopay_contact": str(contact.pk)},
        "payment_method": {
            "id": f"pm_{intent_id}",
            "type": "card",
            "customer": "cus_1",
            "card": {"brand": "visa", "last4": last4},
        },
    }


def test_webhook_activates_one_mandate_from_either_event_and_replays(
    client, fake_stripe, debtor, django_capture_on_commit_callbacks
):
    customer, contact = debtor
    fake_stripe.setup_intents["seti_1"] = setup_intent(customer, contact)
    session = {"id": "cs_setup_1", "object": "checkout.session", "mode": "setup"}
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "checkout.session.completed", {**session, "setup_intent": "seti_1"})
        post(client, "setup_intent.succeeded", setup_intent(customer, contact))
        post(
            client,
            "checkout.session.completed",
            {**session, "setup_intent": "seti_1"},
            event_id="evt_again",
        )
    mandate = AutopayMandate.objects.get(customer=customer)
    assert mandate.is_active
    assert mandate.display == "Visa •••• 4242"
    assert (mandate.payment_method_id, mandate.contact) == ("pm_seti_1", contact)
    assert sent("autopay_set_up").count() == 1
    assert "Visa •••• 4242" in mail.outbox[0].body
    assert (
        Activity.objects.filter(
            customer=customer, kind=Activity.Kind.STATUS_CHANGE, details__autopay="set_up"
        ).count()
        == 1
    )


def test_a_new_mandate_replaces_the_active_one(
    client, fake_stripe, debtor, django_capture_on_commit_callbacks
):
    customer, contact = debtor
    old = mandate_for(customer, contact, display="Visa •••• 1111")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "setup_intent.succeeded", setup_intent(customer, contact, "seti_2", "5555"))
    old.refresh_from_db()
    assert old.status == AutopayMandate.Status.CANCELLED
    assert "replaced" in old.cancel_reason
    assert autopay.active_mandate(customer).display == "Visa •••• 5555"


# --- charging -----------------------------------------------------------------------------


def test_invoice_is_charged_on_its_due_date_and_booked_once(
    client, fake_stripe, debtor, django_capture_on_commit_callbacks
):
    customer, contact = debtor
    mandate_for(customer, contact)
    invoice = invoice_for(customer, number="INV-100")
    later = invoice_for(customer, due_on=ON + dt.timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        run = autopay.charge_due(on=ON)
    assert (run.charged, run.failed) == (1, 0)
    (call,) = fake_stripe.named("payment_intent")
    assert call["idempotency_key"] == f"autopay:{invoice.pk}:1"
    assert (call["amount"], call["currency"], call["off_session"], call["confirm"]) == (
        10000,
        "eur",
        True,
        True,
    )
    assert call["payment_method_types"] == ["card"]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    charge = AutopayCharge.objects.get(invoice=invoice)
    assert charge.status == AutopayCharge.Status.SUCCEEDED
    assert sent("autopay_charged").count() == 1
    assert "INV-100" in mail.outbox[0].subject
    # Stripe's own event for the same PaymentIntent books nothing twice.
    post(
        client,
        "payment_intent.succeeded",
        {
            "id": charge.payment_intent_id,
            "object": "payment_intent",
            "amount": 10000,
            "amount_received": 10000,
            "currency": "eur",
            "status": "succeeded",
            "metadata": {"invoice_number": "INV-100", "customer_ref": "CUST-9"},
        },
    )
    assert Payment.objects.filter(customer=customer).count() == 1
    assert sent("autopay_charged").count() == 1
    # Again the same day: nothing.
    assert autopay.charge_due(on=ON).charges == []
    assert not AutopayCharge.objects.filter(invoice=later).exists()


def test_promise_plan_dispute_and_no_mandate_are_not_charged(fake_stripe, debtor):
    customer, contact = debtor
    mandate_for(customer, contact)
    promised = invoice_for(customer)
    promise = PromiseToPay.objects.create(
        customer=customer,
        amount=D("100.00"),
        currency="EUR",
        promised_on=ON + dt.timedelta(days=5),
        holds_until=ON + dt.timedelta(days=8),
    )
    promise.invoices.add(promised)
    disputed = invoice_for(customer)
    dispute = Dispute.objects.create(customer=customer, reason=Dispute.Reason.PRICING)
    dispute.invoices.add(disputed)
    other = CustomerFactory()
    invoice_for(other)  # no mandate
    assert autopay.charge_due(on=ON).charges == []
    assert fake_stripe.named("payment_intent") == []


def test_bank_debit_takes_only_its_currency(fake_stripe, debtor):
    customer, contact = debtor
    mandate_for(customer, contact, method_type="sepa_debit", display="SEPA Direct Debit •••• 3000")
    invoice_for(customer, currency="USD")
    euros = invoice_for(customer, currency="EUR")
    fake_stripe.answers = ["processing"]
    run = autopay.charge_due(on=ON)
    assert [c.invoice_id for c in AutopayCharge.objects.filter(pk__in=run.charges)] == [euros.pk]


def test_failures_are_retried_after_the_configured_days_then_the_agent_gets_a_task(
    fake_stripe, debtor, django_capture_on_commit_callbacks
):
    customer, contact = debtor
    customer.assigned_agent = UserFactory()
    customer.save()
    mandate_for(customer, contact)
    invoice = invoice_for(customer)
    fake_stripe.answers = ["requires_payment_method"] * 4
    days = {}
    with django_capture_on_commit_callbacks(execute=True):
        for offset in range(13):
            run = autopay.charge_due(on=ON + dt.timedelta(days=offset))
            if run.charges:
                days[offset] = run.failed
    assert days == {0: 1, 1: 1, 4: 1, 11: 1}  # retries 1, 3 and 7 days after each failure
    charges = list(AutopayCharge.objects.filter(invoice=invoice).order_by("attempt"))
    assert [c.attempt for c in charges] == [1, 2, 3, 4]
    assert all(c.status == AutopayCharge.Status.FAILED for c in charges)
    assert charges[-1].next_retry_on is None
    assert "declined" in charges[0].failure_reason
    assert len({c.payment_intent_id for c in charges}) == 4
    task = Task.objects.get(customer=customer, source__startswith="autopay:gave-up")
    assert task.assignee == customer.assigned_agent
    assert sent("autopay_failed").count() == 4
    assert "try again" in mail.outbox[0].body
    assert "not try" in mail.outbox[-1].body


def test_card_declined_error_is_a_failure_with_the_reason(fake_stripe, debtor):
    customer, contact = debtor
    mandate_for(customer, contact)
    invoice = invoice_for(customer)
    fake_stripe.answers = [
        stripe.CardError("Your card has insufficient funds.", None, "card_declined")
    ]
    autopay.charge_due(on=ON)
    charge = AutopayCharge.objects.get(invoice=invoice)
    assert charge.status == AutopayCharge.Status.FAILED
    assert charge.next_retry_on == ON + dt.timedelta(days=1)


def test_sepa_processing_is_not_retried_and_settles_by_webhook(
    client, fake_stripe, debtor, django_capture_on_commit_callbacks
):
    customer, contact = debtor
    mandate_for(customer, contact, method_type="sepa_debit", display="SEPA Direct Debit •••• 3000")
    invoice = invoice_for(customer, number="INV-200")
    second = invoice_for(customer, number="INV-201")
    fake_stripe.answers = ["processing", "processing"]
    run = autopay.charge_due(on=ON)
    assert run.processing == 2
    for offset in (1, 2, 5):
        assert autopay.charge_due(on=ON + dt.timedelta(days=offset)).charges == []
    assert len(fake_stripe.named("payment_intent")) == 2
    paid, failed = (AutopayCharge.objects.get(invoice=i) for i in (invoice, second))
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            "payment_intent.succeeded",
            {
                "id": paid.payment_intent_id,
                "object": "payment_intent",
                "amount": 10000,
                "amount_received": 10000,
                "currency": "eur",
                "status": "succeeded",
                "metadata": {"invoice_number": "INV-200", "customer_ref": "CUST-9"},
            },
        )
        post(
            client,
            "payment_intent.payment_failed",
            {
                "id": failed.payment_intent_id,
                "object": "payment_intent",
                "amount": 10000,
                "currency": "eur",
                "status": "requires_payment_method",
                "last_payment_error": {"message": "The account has insufficient funds."},
                "metadata": {"invoice_number": "INV-201", "customer_ref": "CUST-9"},
            },
        )
    paid.refresh_from_db()
    failed.refresh_from_db()
    invoice.refresh_from_db()
    assert paid.status == AutopayCharge.Status.SUCCEEDED
    assert invoice.status == Invoice.Status.PAID
    assert failed.status == AutopayCharge.Status.FAILED
    assert failed.next_retry_on == NOW.date() + dt.timedelta(days=1)
    assert sent("autopay_charged").count() == 1 and sent("autopay_failed").count() == 1


def test_a_run_that_lost_the_stripe_answer_asks_again_with_the_same_key(
    fake_stripe, debtor, time_machine
):
    customer, contact = debtor
    mandate_for(customer, contact)
    invoice = invoice_for(customer)
    fake_stripe.answers = [stripe.APIConnectionError("network down")]
    autopay.charge_due(on=ON)
    charge = AutopayCharge.objects.get(invoice=invoice)
    assert charge.status == AutopayCharge.Status.PENDING
    assert autopay.charge_due(on=ON).charges == []  # under way: not charged twice
    fake_stripe.intents.clear()  # Stripe never got it; now it does
    time_machine.shift(dt.timedelta(minutes=10))
    autopay.charge_due(on=ON)
    charge.refresh_from_db()
    assert charge.status == AutopayCharge.Status.SUCCEEDED
    keys = [c["idempotency_key"] for c in fake_stripe.named("payment_intent")]
    assert keys == [f"autopay:{invoice.pk}:1"] * 2
    assert AutopayCharge.objects.filter(invoice=invoice).count() == 1


def test_overdue_invoices_at_setup_follow_the_setting(settings, fake_stripe, debtor):
    customer, contact = debtor
    mandate_for(customer, contact)
    overdue = invoice_for(customer, due_on=ON - dt.timedelta(days=20))
    settings.AUTOPAY_CHARGE_OVERDUE = False
    assert autopay.charge_due(on=ON).charges == []
    settings.AUTOPAY_CHARGE_OVERDUE = True
    run = autopay.charge_due(on=ON)
    assert AutopayCharge.objects.get(pk=run.charges[0]).invoice == overdue


# --- cancelling ---------------------------------------------------------------------------


def test_console_cancel_needs_the_permission_and_a_reason_and_stops_retries(
    client, fake_stripe, debtor, django_capture_on_commit_callbacks
):
    customer, contact = debtor
    mandate = mandate_for(customer, contact)
    invoice = invoice_for(customer)
    fake_stripe.answers = ["requires_payment_method"]
    autopay.charge_due(on=ON)
    agent = UserFactory(is_staff=True)
    with pytest.raises(Exception, match="permission"):
        autopay.cancel(mandate, agent, "asked by phone")
    agent.user_permissions.add(
        Permission.objects.get(codename="cancel_mandate"),
        Permission.objects.get(codename="view_autopaymandate"),
    )
    client.force_login(agent)
    listing = client.get("/admin/integrations/autopaymandate/")
    assert listing.status_code == 200 and "Visa •••• 4242" in listing.content.decode()
    detail = client.get(f"/admin/integrations/autopaymandate/{mandate.pk}/change/")
    assert "Cancel automatic payment" in detail.content.decode()
    page = f"/admin/integrations/autopaymandate/{mandate.pk}/cancel/"
    assert client.get(page).status_code == 200
    assert client.post(page, {"reason": "", "apply": "1"}).status_code == 200  # the form asks why
    mandate.refresh_from_db()
    assert mandate.is_active
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page, {"reason": "asked by phone", "apply": "1"})
    assert response.status_code == 302
    mandate.refresh_from_db()
    assert mandate.status == AutopayMandate.Status.CANCELLED
    assert (mandate.cancelled_by, mandate.cancel_reason) == (agent, "asked by phone")
    assert AutopayCharge.objects.get(invoice=invoice).next_retry_on is None
    assert autopay.charge_due(on=ON + dt.timedelta(days=1)).charges == []
    assert sent("autopay_cancelled").count() == 1
    assert Activity.objects.filter(customer=customer, details__autopay="cancelled").exists()


def test_debtor_cancels_their_own_mandate_only(fake_stripe, debtor):
    customer, contact = debtor
    mandate = mandate_for(customer, contact)
    with pytest.raises(Exception, match="not your"):
        autopay.cancel(mandate, ContactFactory(), "")
    autopay.cancel(mandate, contact, "")
    mandate.refresh_from_db()
    assert mandate.cancelled_by_contact == contact
    with pytest.raises(Exception, match="already cancelled"):
        autopay.cancel(mandate, contact, "")


def test_daily_job_is_scheduled():
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="integrations.tasks.charge_autopay").exists()


def test_a_charge_stripe_never_answered_within_a_day_goes_to_a_person_not_to_stripe_again(
    client, fake_stripe, debtor, time_machine, django_capture_on_commit_callbacks
):
    customer, contact = debtor
    mandate_for(customer, contact)
    invoice = invoice_for(customer, number="INV-300")
    fake_stripe.answers = [stripe.APIConnectionError("network down")]
    autopay.charge_due(on=ON)
    time_machine.shift(dt.timedelta(hours=25))
    autopay.charge_due(on=ON + dt.timedelta(days=1))
    charge = AutopayCharge.objects.get(invoice=invoice)
    assert charge.status == AutopayCharge.Status.FAILED and charge.next_retry_on is None
    assert len(fake_stripe.named("payment_intent")) == 1
    assert Task.objects.filter(source=f"autopay:unanswered:{charge.pk}").exists()
    # Stripe did make it after all: its event, found by the charge in its metadata, settles it.
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            "payment_intent.succeeded",
            {
                "id": "pi_late",
                "object": "payment_intent",
                "amount": 10000,
                "amount_received": 10000,
                "currency": "eur",
                "status": "succeeded",
                "metadata": {
                    "invoice_number": "INV-300",
                    "customer_ref": "CUST-9",
                    "autopay_charge": str(charge.pk),
                },
            },
        )
    charge.refresh_from_db()
    invoice.refresh_from_db()
    assert (charge.status, charge.payment_intent_id) == (AutopayCharge.Status.SUCCEEDED, "pi_late")
    assert invoice.status == Invoice.Status.PAID
    assert Payment.objects.filter(customer=customer).count() == 1
