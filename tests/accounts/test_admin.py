"""The console as an agent uses it: lists, filters, search and the daily actions."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Activity, Customer
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
INVOICES = reverse("admin:accounts_invoice_changelist")
CUSTOMERS = reverse("admin:accounts_customer_changelist")


def listed(response) -> set[str]:
    return {str(obj) for obj in response.context["cl"].result_list}


def numbers(response) -> set[str]:
    return {invoice.number for invoice in response.context["cl"].result_list}


def test_invoice_list_shows_days_past_due_and_bucket(client, manager):
    today = timezone.localdate()
    InvoiceFactory(number="LATE-45", due_on=today - dt.timedelta(days=45))
    client.force_login(manager)
    page = client.get(INVOICES)
    assert page.status_code == 200
    html = page.content.decode()
    assert "LATE-45" in html and "31-60" in html and ">45<" in html


def test_bucket_filter(client, manager):
    today = timezone.localdate()
    InvoiceFactory(number="B-10", due_on=today - dt.timedelta(days=10))
    InvoiceFactory(number="B-70", due_on=today - dt.timedelta(days=70))
    InvoiceFactory(number="B-200", due_on=today - dt.timedelta(days=200))
    client.force_login(manager)
    assert numbers(client.get(INVOICES, {"bucket": "61-90"})) == {"B-70"}
    assert numbers(client.get(INVOICES, {"bucket": "120+"})) == {"B-200"}


def test_invoice_search_by_number_customer_email_and_phone(client, manager):
    acme = CustomerFactory(name="Acme Rockets", country="GB")
    ContactFactory(customer=acme, email="ap@acme-rockets.example", phone="+442079460000")
    InvoiceFactory(customer=acme, number="AC-1")
    InvoiceFactory(number="ZZ-9")
    client.force_login(manager)
    assert numbers(client.get(INVOICES, {"q": "zz-9"})) == {"ZZ-9"}
    assert numbers(client.get(INVOICES, {"q": "rocket"})) == {"AC-1"}
    assert numbers(client.get(INVOICES, {"q": "AP@Acme-Rockets.example"})) == {"AC-1"}
    # E-mails and phones are encrypted: exact values only, a phone in any written form.
    assert numbers(client.get(INVOICES, {"q": "acme-rockets.example"})) == set()
    assert numbers(client.get(INVOICES, {"q": "020 7946 0000"})) == {"AC-1"}
    assert numbers(client.get(INVOICES, {"q": "+44 20 7946 0000"})) == {"AC-1"}


def test_filters_by_segment_agent_currency_and_status(client, manager, agent):
    mine = CustomerFactory(assigned_agent=manager, segment=Customer.Segment.STRATEGIC)
    InvoiceFactory(customer=mine, number="MINE", currency="EUR")
    InvoiceFactory(number="OTHER", customer=CustomerFactory(assigned_agent=agent))
    client.force_login(manager)
    assert numbers(client.get(INVOICES, {"agent": "me"})) == {"MINE"}
    assert numbers(client.get(INVOICES, {"customer__segment__exact": "strategic"})) == {"MINE"}
    assert numbers(client.get(INVOICES, {"currency": "EUR"})) == {"MINE"}
    assert numbers(client.get(INVOICES, {"status__exact": "paid"})) == set()


def test_counts_stop_at_the_limit(client, manager, settings):
    settings.ADMIN_COUNT_LIMIT = 3
    for _ in range(5):
        InvoiceFactory()
    client.force_login(manager)
    page = client.get(INVOICES)
    assert "more than 3 invoices" in page.content.decode()


def test_customer_search_by_contact_phone(client, manager):
    customer = CustomerFactory(name="Phone Match GmbH", country="DE")
    ContactFactory(customer=customer, phone="+4930901820")
    CustomerFactory(name="Someone Else")
    client.force_login(manager)
    assert listed(client.get(CUSTOMERS, {"q": "030 901820"})) == {"Phone Match GmbH"}


def test_note_from_the_customer_page_lands_on_the_timeline(client, agent):
    customer = CustomerFactory(assigned_agent=agent)
    client.force_login(agent)
    url = reverse("admin:accounts_customer_note", args=[customer.pk])
    response = client.post(url, {"apply": "1", "text": "Promised to check with AP."})
    assert response.status_code == 302
    entry = Activity.objects.get(customer=customer)
    assert (entry.kind, entry.actor, entry.text) == ("note", agent, "Promised to check with AP.")


def test_log_call_records_outcome(client, agent):
    customer = CustomerFactory(assigned_agent=agent)
    client.force_login(agent)
    url = reverse("admin:accounts_customer_call", args=[customer.pk])
    client.post(url, {"apply": "1", "outcome": "no_answer", "phone": "+14155550123"})
    entry = Activity.objects.get(customer=customer)
    assert (entry.kind, entry.channel, entry.outcome) == ("call", "phone", "no_answer")


def test_pause_action_on_the_changelist_pauses_and_logs_with_reason(client, agent):
    customers = [CustomerFactory(assigned_agent=agent) for _ in range(2)]
    until = timezone.localdate() + dt.timedelta(days=7)
    client.force_login(agent)
    response = client.post(
        CUSTOMERS,
        {
            "action": "pause_dunning",
            "_selected_action": [c.pk for c in customers],
            "apply": "1",
            "until": until.isoformat(),
            "reason": "AP system migration",
        },
    )
    assert response.status_code == 302
    for customer in customers:
        customer.refresh_from_db()
        assert customer.dunning_paused_until == until
        entry = Activity.objects.get(customer=customer)
        assert entry.kind == "hold_change" and entry.actor == agent
        assert "AP system migration" in entry.text


def test_pause_beyond_agent_limit_shows_the_error_and_changes_nothing(client, agent):
    customer = CustomerFactory(assigned_agent=agent)
    client.force_login(agent)
    url = reverse("admin:accounts_customer_pause", args=[customer.pk])
    until = timezone.localdate() + dt.timedelta(days=30)
    response = client.post(url, {"apply": "1", "until": until.isoformat(), "reason": "long"})
    assert response.status_code == 200
    assert "at most 14 days" in response.content.decode()
    customer.refresh_from_db()
    assert customer.dunning_paused_until is None
    assert not Activity.objects.exists()


def test_assign_action_logs_old_and_new_agent(client, manager, agent):
    customer = CustomerFactory(assigned_agent=manager)
    client.force_login(manager)
    url = reverse("admin:accounts_customer_assign", args=[customer.pk])
    client.post(url, {"apply": "1", "agent": agent.pk})
    customer.refresh_from_db()
    assert customer.assigned_agent == agent
    entry = Activity.objects.get(customer=customer, kind="assignment")
    assert entry.details == {"from": manager.pk, "to": agent.pk}
    assert entry.actor == manager


def test_editing_hold_flags_in_the_form_is_logged(client, manager):
    customer = CustomerFactory(name="Flag Co")
    client.force_login(manager)
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(
        {
            "do_not_contact": "on",
            "credit_limit": "5000.00",
            "contacts-TOTAL_FORMS": "0",
            "contacts-INITIAL_FORMS": "0",
            "invoices-TOTAL_FORMS": "0",
            "invoices-INITIAL_FORMS": "0",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert customer.do_not_contact and customer.credit_limit == Decimal("5000.00")
    fields = set(
        Activity.objects.filter(customer=customer).values_list("details__field", flat=True)
    )
    assert fields == {"do_not_contact", "credit_limit"}


def test_contact_phone_is_stored_in_e164_and_bad_numbers_are_named(client, manager):
    from django.core.exceptions import ValidationError

    from accounts.models import Contact

    customer = CustomerFactory(country="GB")
    contact = Contact(customer=customer, name="Jo", phone="020 7946 0000")
    contact.full_clean()
    assert contact.phone == "+442079460000"
    bad = Contact(customer=customer, name="Jo", phone="12")
    with pytest.raises(ValidationError) as error:
        bad.full_clean()
    assert "phone" in error.value.message_dict
    assert "12" in error.value.message_dict["phone"][0]


def test_agent_autocomplete_offers_only_agents(client, manager):
    UserFactory(username="finance-only", role="Finance")
    client.force_login(manager)
    url = reverse("admin:accounts_customer_assign", args=[CustomerFactory().pk])
    choices = [str(c) for _, c in client.get(url).context["form"].fields["agent"].choices]
    assert "manager" in choices and "finance-only" not in choices


def test_customer_list_without_search_lists_everyone(client, manager):
    CustomerFactory(name="Alpha")
    CustomerFactory(name="Beta")
    client.force_login(manager)
    assert listed(client.get(CUSTOMERS)) == {"Alpha", "Beta"}


def test_due_date_extension_in_the_admin_is_logged(client, manager):
    invoice = InvoiceFactory(number="EXT-1", due_on=dt.date(2026, 11, 1))
    client.force_login(manager)
    url = reverse("admin:accounts_invoice_change", args=[invoice.pk])
    form = client.get(url).context["adminform"].form
    data = {
        k: v
        for k, v in form.initial.items()
        if v is not None and k in form.fields and k != "original"  # no file re-uploaded
    }
    data["due_on"] = "2026-12-15"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = Activity.objects.get(invoice=invoice)
    assert entry.details == {"field": "due_on", "from": "2026-11-01", "to": "2026-12-15"}
    assert entry.actor == manager


def test_short_search_terms_match_whole_numbers_only(client, manager):
    InvoiceFactory(number="Z9")
    InvoiceFactory(number="AZ9B")
    client.force_login(manager)
    assert numbers(client.get(INVOICES, {"q": "z9"})) == {"Z9"}
    assert numbers(client.get(INVOICES, {"q": "az9"})) == {"AZ9B"}


def test_search_with_many_matches_still_finds_them_all(client, manager, monkeypatch):
    from accounts import selectors

    customer = CustomerFactory(name="Bulk Buyer")
    for n in range(12):
        InvoiceFactory(customer=customer, number=f"BULK-{n}")
    InvoiceFactory(number="OTHER-1")
    monkeypatch.setattr(selectors, "SPARSE_MATCHES", 5)  # force the dense path
    client.force_login(manager)
    found = numbers(client.get(INVOICES, {"q": "bulk"}))
    assert found == {f"BULK-{n}" for n in range(12)}


def test_customer_page_lists_the_twenty_oldest_open_invoices(client, manager):
    customer = CustomerFactory()
    today = timezone.localdate()
    for n in range(25):
        InvoiceFactory(customer=customer, number=f"OLD-{n:02d}", due_on=today - dt.timedelta(n))
    client.force_login(manager)
    html = client.get(reverse("admin:accounts_customer_change", args=[customer.pk])).content
    html = html.decode()
    assert "OLD-24" in html and "OLD-05" in html and "OLD-04" not in html
    assert "all open invoices" in html


def test_broad_search_past_the_customer_limit_is_still_complete(client, manager, monkeypatch):
    from accounts import selectors

    for n in range(4):
        InvoiceFactory(customer=CustomerFactory(name=f"Dental Care {n}"), number=f"DC-{n}")
    InvoiceFactory(number="OTHER-1")
    monkeypatch.setattr(selectors, "MAX_MATCHED_CUSTOMERS", 2)
    client.force_login(manager)
    assert numbers(client.get(INVOICES, {"q": "dental"})) == {f"DC-{n}" for n in range(4)}
    names = listed(client.get(CUSTOMERS, {"q": "dental"}))
    assert names == {f"Dental Care {n}" for n in range(4)}


def test_searches_stop_counting_sooner(client, manager, settings):
    settings.ADMIN_SEARCH_COUNT_LIMIT = 2
    customer = CustomerFactory(name="Counted Co")
    for _ in range(3):
        InvoiceFactory(customer=customer)
    client.force_login(manager)
    assert "more than 2 invoices" in client.get(INVOICES, {"q": "counted"}).content.decode()
    assert "3 invoices" in client.get(INVOICES).content.decode()
