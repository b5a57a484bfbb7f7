"""The portal's action pages (portal/action_views.py) through HTTP: forms, CSRF, refusals
on the field, uploads bounded, one customer never reaching another's invoices."""

import datetime as dt
import re
import sys
import types
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts import portal_links
from accounts.models import Activity, Invoice
from cases.models import Dispute, PaymentPlan, PromiseToPay, Task
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture(autouse=True)
def portal_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.PORTAL_PROMISE_MAX_DAYS = 30
    settings.PORTAL_PROMISE_MIN_SHARE = "0.5"
    settings.PORTAL_PLAN_MAX_INSTALLMENTS = 6
    settings.PORTAL_PLAN_MIN_INSTALLMENT = "50"
    settings.PORTAL_PLAN_FIRST_DUE_MAX_DAYS = 30
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "5000"
    settings.PORTAL_UPLOAD_MAX_BYTES = 2048
    settings.PORTAL_UPLOAD_MAX_FILES = 2


@pytest.fixture
def debtor():
    agent = UserFactory(username="their-agent", role="Collections agent")
    customer = CustomerFactory(name="Owes Money SARL", language="en", assigned_agent=agent)
    contact = ContactFactory(customer=customer, is_primary=True, email="ap@owes.example")
    first = InvoiceFactory(customer=customer, number="INV-1", amount=Decimal("600.00"))
    return customer, contact, first


@pytest.fixture
def stranger():
    return InvoiceFactory(number="INV-OTHER", amount=Decimal("900.00"))


def signed_in(client: Client, customer, contact) -> Client:
    """A browser in the portal of `customer`, signed in by `contact`'s link."""
    url = portal_links.portal_url(contact)
    response = client.get(url[url.index("/portal/") :])
    assert response.status_code == 302 and response.url == reverse("portal:home")
    return client


@pytest.fixture
def browser(client, debtor):
    customer, contact, _first = debtor
    return signed_in(client, customer, contact)


@pytest.mark.parametrize(
    ("name", "form_id", "inputs"),
    [
        ("promise", "promise-form", ["id_invoices_{pk}", "id_amount", "id_promised_on"]),
        ("dispute", "dispute-form", ["id_invoices_{pk}", "id_reason", "id_message"]),
        ("plan", "plan-form", ["id_invoices_{pk}", "id_installments", "id_first_due_on"]),
        ("preferences", "preferences-form", ["id_language", "id_email", "id_phone"]),
        ("message", "message-form", ["id_subject", "id_text", "id_attachments"]),
    ],
)
def test_each_page_shows_its_form_with_labels_and_csrf(browser, debtor, name, form_id, inputs):
    _customer, _contact, first = debtor
    inputs = [input_id.format(pk=first.pk) for input_id in inputs]
    response = browser.get(reverse(f"portal:{name}"))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="{form_id}"' in page and 'method="post"' in page
    assert "csrfmiddlewaretoken" in page
    for input_id in inputs:
        assert f'id="{input_id}"' in page
        assert f'for="{input_id}"' in page  # every input has its label
    assert "<h1" in page
    assert_labelled_and_described(page)
    # Under no-referrer a browser posts the form with `Origin: null`, refused by CSRF.
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Robots-Tag"] == "noindex, nofollow"


def assert_labelled_and_described(page: str) -> None:
    """Every visible control has a label, every aria-describedby names ids on the page,
    and no id is used twice (what axe-core checks first on a form)."""
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "duplicate ids"
    for described in re.findall(r'aria-describedby="([^"]+)"', page):
        for target in described.split():
            assert target in ids, f"aria-describedby names a missing id {target}"
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", page):
        if 'type="hidden"' in tag:
            continue
        control = re.search(r'\sid="([^"]+)"', tag).group(1)
        assert f'for="{control}"' in page, f"{control} has no label"


@pytest.mark.parametrize("name", ["promise", "dispute", "plan", "preferences", "message"])
def test_pages_need_a_portal_login(client, name):
    response = client.get(reverse(f"portal:{name}"))
    assert response.status_code == 302 and response.url == reverse("portal:login")
    response = client.post(reverse(f"portal:{name}"), {})
    assert response.status_code == 302 and response.url == reverse("portal:login")


def test_the_overview_and_menu_lead_to_the_actions(browser):
    page = browser.get(reverse("portal:home")).content.decode()
    for name in ("promise", "dispute", "plan", "preferences", "message"):
        assert f'id="nav-{name}"' in page
    for name in ("promise", "dispute", "plan"):
        assert f'id="home-{name}"' in page


def test_a_post_without_the_csrf_token_is_refused(debtor):
    customer, contact, first = debtor
    strict = signed_in(Client(enforce_csrf_checks=True), customer, contact)
    response = strict.post(
        reverse("portal:promise"),
        {"invoices": [first.pk], "amount": "600.00", "promised_on": ON.isoformat()},
    )
    assert response.status_code == 403
    response = strict.post(reverse("portal:dispute"), {"invoices": [first.pk]})
    assert response.status_code == 403
    assert not PromiseToPay.objects.exists() and not Dispute.objects.exists()


def test_promise_is_recorded_and_confirmed(browser, debtor):
    customer, _contact, first = debtor
    response = browser.post(
        reverse("portal:promise"),
        {
            "invoices": [first.pk],
            "amount": "450.00",
            "promised_on": (ON + dt.timedelta(days=10)).isoformat(),
        },
        follow=True,
    )
    assert response.redirect_chain == [(reverse("portal:promise"), 302)]
    promise = PromiseToPay.objects.get(customer=customer)
    assert promise.amount == Decimal("450.00")
    assert promise.channel == Activity.Channel.PORTAL
    page = response.content.decode()
    assert "USD 450.00" in page
    assert f'id="promise-{promise.pk}"' in page  # listed under "Your promises"


def test_promise_too_far_ahead_shows_the_error_on_the_date(browser, debtor):
    _customer, _contact, first = debtor
    response = browser.post(
        reverse("portal:promise"),
        {
            "invoices": [first.pk],
            "amount": "600.00",
            "promised_on": (ON + dt.timedelta(days=45)).isoformat(),
        },
    )
    assert response.status_code == 200
    assert "promised_on" in response.context["form"].errors
    assert not PromiseToPay.objects.exists()


def test_another_customers_invoice_answers_like_an_unknown_one(browser, stranger):
    answers = []
    for invoice_id in (stranger.pk, 10**9):
        response = browser.post(
            reverse("portal:promise"),
            {
                "invoices": [invoice_id],
                "amount": "600.00",
                "promised_on": ON.isoformat(),
            },
        )
        assert response.status_code == 200
        answers.append(response.context["form"].errors["invoices"])
        assert "INV-OTHER" not in response.content.decode()
    assert answers[0] == answers[1] == ["Choose among your invoices."]
    response = browser.post(
        reverse("portal:dispute"),
        {"invoices": [stranger.pk], "reason": "pricing", "message": "Not mine"},
    )
    assert response.context["form"].errors["invoices"] == ["Choose among your invoices."]
    assert not PromiseToPay.objects.exists() and not Dispute.objects.exists()
    stranger.refresh_from_db()
    assert stranger.status == Invoice.Status.OPEN


def test_dispute_with_an_attachment_holds_the_invoice_and_tasks_the_agent(browser, debtor):
    customer, _contact, first = debtor
    response = browser.post(
        reverse("portal:dispute"),
        {
            "invoices": [first.pk],
            "reason": "not_received",
            "message": "Never delivered.",
            "attachments": [SimpleUploadedFile("note.pdf", PDF, "application/pdf")],
        },
    )
    assert response.status_code == 302
    dispute = Dispute.objects.get(customer=customer)
    assert f'id="dispute-{dispute.pk}"' in browser.get(response.url).content.decode()
    first.refresh_from_db()
    assert first.status == Invoice.Status.DISPUTED
    task = Task.objects.get(source=f"portal:dispute:{dispute.pk}")
    assert task.assignee == customer.assigned_agent
    entry = Activity.objects.get(kind=Activity.Kind.PORTAL, details__action="dispute")
    assert entry.details["attachments"][0]["name"] == "note.pdf"


def test_dispute_attachment_of_the_wrong_type_is_refused_on_the_field(browser, debtor):
    _customer, _contact, first = debtor
    response = browser.post(
        reverse("portal:dispute"),
        {
            "invoices": [first.pk],
            "reason": "quality",
            "message": "Broken.",
            "attachments": [SimpleUploadedFile("tool.pdf", b"MZ\x90\x00binary", "application/pdf")],
        },
    )
    assert response.status_code == 200
    assert "tool.pdf is not a PDF" in response.context["form"].errors["attachments"][0]
    assert_labelled_and_described(response.content.decode())
    assert not Dispute.objects.exists()


def test_an_upload_over_the_request_limit_is_refused_before_anything_is_written(browser, debtor):
    _customer, _contact, first = debtor
    big = SimpleUploadedFile("big.pdf", PDF + b"x" * 5000, "application/pdf")
    response = browser.post(
        reverse("portal:dispute"),
        {"invoices": [first.pk], "reason": "quality", "message": "Broken.", "attachments": [big]},
    )
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert errors and "at most 4.0" in errors[0]
    assert not Dispute.objects.exists()


def test_plan_within_the_rules_is_agreed_and_one_outside_waits(browser, debtor):
    customer, _contact, first = debtor
    response = browser.post(
        reverse("portal:plan"),
        {
            "invoices": [first.pk],
            "installments": "3",
            "first_due_on": (ON + dt.timedelta(days=5)).isoformat(),
        },
        follow=True,
    )
    assert PaymentPlan.objects.get(customer=customer).status == PaymentPlan.Status.ACTIVE
    assert "agreed" in response.content.decode()
    second = InvoiceFactory(customer=customer, number="INV-2", amount=Decimal("100.00"))
    response = browser.post(
        reverse("portal:plan"),
        {
            "invoices": [second.pk],
            "installments": "4",
            "first_due_on": (ON + dt.timedelta(days=5)).isoformat(),
        },
        follow=True,
    )
    plan = PaymentPlan.objects.get(invoices=second)
    assert plan.status == PaymentPlan.Status.PROPOSED
    page = response.content.decode()
    assert "approval" in page
    assert f'id="plan-{plan.pk}"' in page and "waiting for our approval" in page
    assert Task.objects.filter(kind=Task.Kind.APPROVAL, details__plan=plan.pk).exists()


def test_preferences_are_saved_and_a_bad_phone_is_named(browser, debtor):
    customer, contact, _first = debtor
    response = browser.post(
        reverse("portal:preferences"),
        {"language": "de", "email": "ap@owes.example", "phone": "12", "preferred_channel": ""},
    )
    assert response.status_code == 200
    assert "phone" in response.context["form"].errors
    customer.refresh_from_db()
    assert customer.language == "en"
    response = browser.post(
        reverse("portal:preferences"),
        {
            "language": "de",
            "email": "ap@owes.example",
            "phone": "+1 415 555 0199",
            "preferred_channel": "sms",
            "opted_out": ["call"],
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    contact.refresh_from_db()
    assert customer.language == "de"
    assert (contact.phone, contact.preferred_channel) == ("+14155550199", "sms")
    assert contact.call_opt_out_source == "portal"


@pytest.fixture
def inbound(monkeypatch):
    """integrations.inbound.receive.from_portal, recorded (the real one is another
    branch's; the lead runs it after merging)."""
    calls = []

    def from_portal(*, customer, contact, subject, text, attachments):
        calls.append(
            {
                "customer": customer,
                "contact": contact,
                "subject": subject,
                "text": text,
                "attachments": [(f.name, f.read()) for f in attachments],
            }
        )

    module = types.ModuleType("integrations.inbound.receive")
    module.from_portal = from_portal
    monkeypatch.setitem(sys.modules, "integrations.inbound.receive", module)
    return calls


def test_a_message_reaches_the_inbound_path_with_its_attachments(browser, debtor, inbound):
    customer, contact, _first = debtor
    response = browser.post(
        reverse("portal:message"),
        {
            "subject": "About INV-1",
            "text": "We paid on Friday.",
            "attachments": [SimpleUploadedFile("remittance.pdf", PDF, "application/pdf")],
        },
        follow=True,
    )
    assert response.redirect_chain == [(reverse("portal:message"), 302)]
    assert inbound == [
        {
            "customer": customer,
            "contact": contact,
            "subject": "About INV-1",
            "text": "We paid on Friday.",
            "attachments": [("remittance.pdf", PDF)],
        }
    ]


def test_a_message_with_a_refused_attachment_is_not_sent(browser, inbound):
    response = browser.post(
        reverse("portal:message"),
        {
            "subject": "Hello",
            "text": "See attached.",
            "attachments": [SimpleUploadedFile("virus.txt", b"\x00\x01\x02", "text/plain")],
        },
    )
    assert response.status_code == 200
    assert "attachments" in response.context["form"].errors
    assert inbound == []
