"""The debtor portal's core: signing in by link or code, the pages, paying, revoking."""

import datetime as dt
import re
import sys
import types
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from accounts import portal_links
from accounts.models import Activity, Payment
from cases.models import Task
from dunning import rendering
from portal import access, tasks
from portal.models import AccessCode
from tests.clock import NOW, ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def offline(settings):
    settings.STRIPE_API_KEY = ""
    settings.SITE_URL = "https://collections.example.com"
    settings.BANK_TRANSFER_IBAN = "DE89370400440532013000"


@pytest.fixture
def debtor():
    customer = CustomerFactory(name="Owes Money SARL", external_ref="CUST-000042", language="en")
    contact = ContactFactory(customer=customer, is_primary=True, email="ap@owes.example")
    first = InvoiceFactory(
        customer=customer,
        number="INV-7001",
        amount=Decimal("1250.50"),
        currency="USD",
        issued_on=ON - dt.timedelta(days=37),
        due_on=ON - dt.timedelta(days=7),
    )
    second = InvoiceFactory(
        customer=customer,
        number="INV-7002",
        amount=Decimal("400.00"),
        currency="USD",
        issued_on=ON - dt.timedelta(days=10),
        due_on=ON + dt.timedelta(days=20),
    )
    return customer, contact, first, second


@pytest.fixture
def other():
    customer = CustomerFactory(name="Someone Else GmbH")
    contact = ContactFactory(customer=customer, email="ap@else.example")
    invoice = InvoiceFactory(customer=customer, number="OTHER-1", amount=Decimal("99.00"))
    return customer, contact, invoice


def logged_in(client: Client, contact) -> Client:
    url = portal_links.portal_url(contact)
    response = client.get(url[url.index("/portal/") :])
    assert response.status_code == 302 and response.url == reverse("portal:home")
    return client


def link_path(contact) -> str:
    url = portal_links.portal_url(contact)
    return url[url.index("/portal/") :]


class TestLink:
    def test_a_link_logs_the_contact_in_and_notes_the_visit(self, client, debtor):
        customer, contact, *_ = debtor
        logged_in(client, contact)
        page = client.get(reverse("portal:home"))
        assert page.status_code == 200
        text = page.content.decode()
        assert "Owes Money SARL" in text and "1,650.50" in text and "Overdue" in text
        assert page["X-Robots-Tag"] == "noindex, nofollow"
        visit = Activity.objects.get(customer=customer, kind=Activity.Kind.PORTAL)
        assert visit.channel == Activity.Channel.PORTAL and visit.details["via"] == "link"

    def test_pages_need_a_login(self, client, debtor):
        for name in ("portal:home", "portal:invoices", "portal:pay", "portal:period_statement"):
            response = client.get(reverse(name))
            assert response.status_code == 302 and response.url == reverse("portal:login")

    def test_a_forged_or_altered_token_is_not_found(self, client, debtor):
        _customer, contact, *_ = debtor
        path = link_path(contact)
        assert client.get(path[:-3] + "xx/").status_code == 404
        assert client.get("/portal/l/not-a-token/").status_code == 404

    def test_an_expired_link_offers_a_new_one(self, client, debtor, clock):
        _customer, contact, *_ = debtor
        path = link_path(contact)
        clock.shift(dt.timedelta(days=46))
        response = client.get(path)
        assert response.status_code == 410
        assert b"send-link" in response.content

    def test_revoking_ends_links_and_sessions(self, client, debtor):
        customer, contact, *_ = debtor
        path = link_path(contact)
        logged_in(client, contact)
        portal_links.revoke([contact], reason="lost phone")
        assert client.get(reverse("portal:home")).status_code == 302
        assert client.get(path).status_code == 404
        entry = Activity.objects.get(customer=customer, kind=Activity.Kind.OVERRIDE)
        assert "revoked" in entry.text and "lost phone" in entry.text

    def test_a_link_opens_only_its_own_customer(self, client, debtor, other):
        _customer, contact, first, _second = debtor
        _other_customer, _other_contact, foreign = other
        logged_in(client, contact)
        assert client.get(reverse("portal:invoice", args=[first.pk])).status_code == 200
        assert client.get(reverse("portal:invoice", args=[foreign.pk])).status_code == 404
        assert client.get(reverse("portal:invoice_pdf", args=[foreign.pk])).status_code == 404
        assert client.get(reverse("portal:invoice", args=[10**9])).status_code == 404

    def test_messages_carry_the_contacts_portal_link(self, client, debtor):
        customer, contact, first, second = debtor
        context = rendering.notice_context(
            customer=customer, invoices=[first, second], contact=contact, on=ON
        )
        assert context["portal_url"] == context["pay_link"]
        assert "/portal/l/" in context["invoices"][0]["pay_link"]
        path = context["portal_url"][context["portal_url"].index("/portal/") :]
        assert client.get(path).status_code == 302

    def test_the_language_follows_the_customer(self, client, debtor):
        customer, contact, *_ = debtor
        customer.language = "de"
        customer.save(update_fields=["language"])
        logged_in(client, contact)
        page = client.get(reverse("portal:home"))
        assert page.content.decode().count('lang="de"') == 1

    def test_requests_past_the_limit_get_429(self, client, debtor, settings):
        settings.PORTAL_REQUESTS_PER_MINUTE = 3
        statuses = [client.get(reverse("portal:login")).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]


@pytest.fixture
def fake_sender(monkeypatch):
    """dunning.transactional.send, recorded (its own tests check the real sending)."""
    sent = []
    module = types.ModuleType("dunning.transactional")
    module.send = lambda kind, **kwargs: sent.append((kind, kwargs)) or kwargs["key"]
    monkeypatch.setitem(sys.modules, "dunning.transactional", module)
    import dunning

    monkeypatch.setattr(dunning, "transactional", module, raising=False)
    return sent


class TestCode:
    def ask(self, client, email, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = client.post(reverse("portal:login"), {"email": email})
        return response, callbacks

    def test_known_and_unknown_addresses_get_the_same_answer(
        self, client, debtor, django_capture_on_commit_callbacks
    ):
        def page(email):
            response, callbacks = self.ask(client, email, django_capture_on_commit_callbacks)
            text = client.get(response.url).content.decode().replace(email, "X")
            text = re.sub(r'(nonce|value)="[^"]*"', "", text)
            return response.status_code, response.url, text, len(callbacks)

        known = page("AP@owes.example")
        unknown = page("nobody@nowhere.example")
        assert known[:3] == unknown[:3]
        assert (known[3], unknown[3]) == (1, 0)  # only the known address gets a message

    def test_the_code_signs_in_once(
        self, client, debtor, fake_sender, django_capture_on_commit_callbacks, monkeypatch
    ):
        _customer, contact, *_ = debtor
        monkeypatch.setattr(  # the Celery task, run here
            tasks.send_access, "delay", lambda ids: [tasks.send_access(ids)]
        )
        self.ask(client, "ap@owes.example", django_capture_on_commit_callbacks)[1][0]()
        kind, sent = fake_sender[0]
        assert kind == "portal_access" and sent["contact"] == contact
        assert set(sent["secrets"]) == {"link", "code"}
        code = sent["context"]["code"]
        assert len(code) == 6 and code.isdigit()
        assert AccessCode.objects.get(contact=contact).code_hash != code
        wrong = "000000" if code != "000000" else "111111"
        response = client.post(reverse("portal:code"), {"code": wrong})
        assert response.status_code == 200 and b"wrong or has expired" in response.content
        response = client.post(reverse("portal:code"), {"code": code})
        assert response.status_code == 302 and response.url == reverse("portal:home")
        assert client.get(reverse("portal:home")).status_code == 200
        client.post(reverse("portal:logout"))
        client.post(reverse("portal:login"), {"email": "ap@owes.example"})
        response = client.post(reverse("portal:code"), {"code": code})
        assert response.status_code == 200  # used up

    def test_wrong_tries_use_up_the_code(self, debtor, fake_sender, settings):
        _customer, contact, *_ = debtor
        access.send_access(contact.pk)
        code = fake_sender[0][1]["context"]["code"]
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(settings.PORTAL_CODE_ATTEMPTS):
            assert access.check_code("ap@owes.example", wrong) is None
        assert access.check_code("ap@owes.example", code) is None

    def test_an_expired_code_does_not_work(self, debtor, fake_sender):
        _customer, contact, *_ = debtor
        access.send_access(contact.pk, now=NOW - dt.timedelta(minutes=16))
        code = fake_sender[0][1]["context"]["code"]
        assert access.check_code("ap@owes.example", code) is None

    def test_a_code_for_another_address_does_not_work(self, debtor, other, fake_sender):
        _customer, _contact, *_ = debtor
        _other_customer, other_contact, _invoice = other
        access.send_access(other_contact.pk)
        code = fake_sender[0][1]["context"]["code"]
        assert access.check_code("ap@owes.example", code) is None
        assert access.check_code("ap@else.example", code) == other_contact

    def test_asking_too_often_sends_nothing_more(self, debtor, settings):
        settings.PORTAL_ACCESS_REQUESTS_PER_HOUR = 2
        sent = [access.request_access("ap@owes.example") for _ in range(4)]
        assert [bool(ids) for ids in sent] == [True, True, False, False]


class TestPages:
    def test_open_and_paid_invoices(self, client, debtor):
        customer, contact, _first, _second = debtor
        paid = InvoiceFactory(customer=customer, number="INV-6000", amount=Decimal("10.00"))
        payment = PaymentFactory(customer=customer, amount=Decimal("10.00"), currency="USD")
        from accounts import services

        services.allocate(payment=payment, invoice=paid)
        logged_in(client, contact)
        open_page = client.get(reverse("portal:invoices")).content.decode()
        assert "INV-7001" in open_page and "INV-6000" not in open_page
        paid_page = client.get(reverse("portal:invoices") + "?show=paid").content.decode()
        assert "INV-6000" in paid_page and "INV-7001" not in paid_page
        detail = client.get(reverse("portal:invoice", args=[paid.pk])).content.decode()
        assert "Payment" in detail

    def test_invoice_pdf_is_the_original_or_a_copy(self, client, debtor, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        _customer, contact, first, second = debtor
        logged_in(client, contact)
        copy = client.get(reverse("portal:invoice_pdf", args=[first.pk]))
        assert copy.status_code == 200 and copy.content.startswith(b"%PDF")
        second.original.save("inv.pdf", ContentFile(b"%PDF-1.4 the original"), save=True)
        original = client.get(reverse("portal:invoice_pdf", args=[second.pk]))
        assert b"".join(original.streaming_content) == b"%PDF-1.4 the original"

    def test_statement_for_a_period(self, client, debtor):
        customer, contact, _first, _second = debtor
        PaymentFactory(
            customer=customer,
            amount=Decimal("250.50"),
            currency="USD",
            received_on=ON - dt.timedelta(days=5),
        )
        logged_in(client, contact)
        start = (ON - dt.timedelta(days=20)).isoformat()
        page = client.get(
            reverse("portal:period_statement"), {"start": start, "end": ON.isoformat()}
        )
        statement = page.context["statement"]
        (usd,) = statement.currencies
        assert usd["opening"] == Decimal("1250.50")  # INV-7001, issued before the period
        assert next(line.reference for line in usd["lines"]) == "INV-7002"
        assert usd["closing"] == Decimal("1250.50") + Decimal("400.00") - Decimal("250.50")
        pdf = client.get(
            reverse("portal:period_statement"),
            {"start": start, "end": ON.isoformat(), "format": "pdf"},
        )
        assert pdf.content.startswith(b"%PDF")

    def test_a_backwards_period_names_the_field(self, client, debtor):
        _customer, contact, *_ = debtor
        logged_in(client, contact)
        page = client.get(
            reverse("portal:period_statement"), {"start": ON.isoformat(), "end": "2020-01-01"}
        )
        assert page.status_code == 200 and "end" in page.context["form"].errors


class TestPay:
    def test_bank_transfer_for_everything(self, client, debtor):
        customer, contact, first, second = debtor
        logged_in(client, contact)
        response = client.post(
            reverse("portal:pay"), {"invoices": [first.pk, second.pk], "method": "transfer"}
        )
        assert response.status_code == 200
        transfer = response.context["transfer"]
        assert transfer.amount == Decimal("1650.50") and not transfer.partial
        assert transfer.reference == "CUST-000042 INV-7001 INV-7002"
        assert "DE89370400440532013000" in response.content.decode()
        entry = Activity.objects.get(
            customer=customer, kind=Activity.Kind.PORTAL, details__action="pay"
        )
        assert entry.details["amount"] == "1650.50"
        assert not Task.objects.filter(customer=customer).exists()

    def test_part_of_the_balance_asks_why_and_tells_the_agent(self, client, debtor):
        customer, contact, first, _second = debtor
        logged_in(client, contact)
        response = client.post(
            reverse("portal:pay"), {"invoices": [first.pk], "amount": "500", "method": "transfer"}
        )
        assert "reason" in response.context["form"].errors
        response = client.post(
            reverse("portal:pay"),
            {
                "invoices": [first.pk],
                "amount": "500,00",
                "reason": "cash_flow",
                "method": "transfer",
            },
        )
        assert response.context["transfer"].amount == Decimal("500.00")
        task = Task.objects.get(customer=customer)
        assert "Partial payment" in task.title and "cash_flow" in task.title

    @pytest.mark.parametrize(
        ("amount", "error"),
        [
            ("abc", "as a number"),
            ("-5", "more than zero"),
            ("5000", "more than these"),
            ("1.234", "two decimals"),
        ],
    )
    def test_bad_amounts_name_the_field(self, client, debtor, amount, error):
        _customer, contact, first, _second = debtor
        logged_in(client, contact)
        response = client.post(
            reverse("portal:pay"), {"invoices": [first.pk], "amount": amount, "method": "transfer"}
        )
        assert response.status_code == 200
        assert error in " ".join(response.context["form"].errors["amount"])

    def test_another_customers_invoice_cannot_be_chosen(self, client, debtor, other):
        _customer, contact, first, _second = debtor
        _c, _contact, foreign = other
        logged_in(client, contact)
        response = client.post(
            reverse("portal:pay"), {"invoices": [first.pk, foreign.pk], "method": "transfer"}
        )
        assert response.status_code == 200 and "invoices" in response.context["form"].errors

    def test_one_currency_at_a_time(self, client, debtor):
        customer, contact, first, _second = debtor
        euro = InvoiceFactory(customer=customer, currency="EUR", amount=Decimal("5.00"))
        logged_in(client, contact)
        response = client.post(
            reverse("portal:pay"), {"invoices": [first.pk, euro.pk], "method": "transfer"}
        )
        assert "one currency" in " ".join(response.context["form"].errors["invoices"])

    def test_stripe_checkout_for_one_invoice(self, client, debtor, settings, monkeypatch):
        settings.STRIPE_API_KEY = "sk_test_x"
        _customer, contact, first, second = debtor
        calls = []

        def fake_checkout(invoice, **kwargs):
            calls.append((invoice, kwargs))
            return "https://checkout.stripe.test/s/1"

        monkeypatch.setattr("portal.payments.create_checkout_session", fake_checkout)
        logged_in(client, contact)
        response = client.post(
            reverse("portal:pay"),
            {"invoices": [first.pk], "amount": "100", "reason": "other", "method": "card"},
        )
        assert response.status_code == 302 and response.url == "https://checkout.stripe.test/s/1"
        assert calls[0][0] == first and calls[0][1]["amount"] == Decimal("100")
        response = client.post(
            reverse("portal:pay"), {"invoices": [first.pk, second.pk], "method": "card"}
        )
        assert "one invoice at a time" in " ".join(response.context["form"].errors["invoices"])

    def test_forms_need_the_csrf_token(self, debtor):
        _customer, contact, first, _second = debtor
        client = logged_in(Client(enforce_csrf_checks=True), contact)
        response = client.post(
            reverse("portal:pay"), {"invoices": [first.pk], "method": "transfer"}
        )
        assert response.status_code == 403
        assert not Payment.objects.exists()


def test_a_session_ends_after_the_idle_minutes(client, debtor, clock, settings):
    _customer, contact, *_ = debtor
    logged_in(client, contact)
    clock.shift(dt.timedelta(minutes=settings.PORTAL_SESSION_MINUTES - 1))
    assert client.get(reverse("portal:home")).status_code == 200  # and counts as activity
    clock.shift(dt.timedelta(minutes=settings.PORTAL_SESSION_MINUTES - 1))
    assert client.get(reverse("portal:home")).status_code == 200
    clock.shift(dt.timedelta(minutes=settings.PORTAL_SESSION_MINUTES + 1))
    assert client.get(reverse("portal:home")).status_code == 302


def test_the_portal_link_command_prints_a_working_link(client, debtor):
    from io import StringIO

    from django.core.management import call_command

    _customer, contact, *_ = debtor
    out = StringIO()
    call_command("portal_link", email="AP@owes.example", stdout=out)
    url = out.getvalue().split()[-1]
    assert client.get(url[url.index("/portal/") :]).status_code == 302
    assert contact.name in out.getvalue()
