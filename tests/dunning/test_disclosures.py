import datetime as dt
import zoneinfo

import pytest
from django.core import mail
from django.urls import reverse

from accounts import portal_links
from accounts.models import Customer
from dunning import planner, rendering, sender
from dunning.models import Disclosure, Notice, Template
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))
US_NOTICE = "This is an attempt to collect a debt by Example Supplies Ltd"
CONSUMER, BUSINESS = Customer.Kind.CONSUMER, Customer.Kind.BUSINESS


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.COMPANY_NAME = "Example Supplies Ltd"


def send_overdue(**customer_fields) -> dict[str, Notice]:
    """Plan and send the +7 step (an e-mail and an SMS) for one new customer."""
    customer = CustomerFactory(**customer_fields)
    ContactFactory(customer=customer, email="pat@example.net", is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    sender.send_due(now=NOW)
    return {n.channel: n for n in Notice.objects.filter(customer=customer)}


def rendered(channel="email", template="firm-overdue", **customer_fields) -> dict:
    customer = CustomerFactory(**customer_fields)
    contact = ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    context = rendering.notice_context(
        customer=customer, invoices=list(customer.invoices.all()), contact=contact, on=ON
    )
    return rendering.render_notice(
        Template.objects.get(name=template, language="en"),
        context,
        customer=customer,
        contact=contact,
        channel=channel,
    )


def test_us_consumer_email_carries_the_validation_notice_after_the_message():
    notices = send_overdue(kind=CONSUMER, country="US")
    [message] = mail.outbox
    body = message.body
    assert US_NOTICE in body and "within 30 days" in body
    assert body.index("Our records show") < body.index(US_NOTICE)
    assert notices["email"].body_text == portal_links.mask(body)  # what was sent, link masked


def test_business_customers_get_no_disclosure_by_default():
    send_overdue(kind=BUSINESS, country="US")
    [message] = mail.outbox
    assert "attempt to collect a debt" not in message.body


def test_a_disclosure_for_any_kind_reaches_business_customers_too():
    Disclosure.objects.create(
        name="B2B late-payment note",
        customer_kind=Disclosure.CustomerKind.ANY,
        jurisdiction="US",
        body_text="Late payment interest may apply.",
    )
    assert "Late payment interest may apply." in rendered(kind=BUSINESS, country="US")["body_text"]


def test_a_country_beats_a_region_beats_any_country():
    Disclosure.objects.create(name="Anywhere", body_text="ANYWHERE LINE")
    Disclosure.objects.create(name="Germany", jurisdiction="DE", body_text="GERMANY LINE")
    german = rendered(kind=CONSUMER, country="DE")["body_text"]
    assert "GERMANY LINE" in german and "ANYWHERE LINE" not in german
    assert "amount owed to" not in german  # the seeded EU line lost to the country
    french = rendered(kind=CONSUMER, country="FR")["body_text"]
    assert "amount owed to Example Supplies Ltd" in french and "GERMANY LINE" not in french
    japanese = rendered(kind=CONSUMER, country="JP")["body_text"]
    assert "ANYWHERE LINE" in japanese and "amount owed to" not in japanese


def test_uk_consumers_are_signposted_to_free_debt_advice_on_email_and_sms():
    assert "MoneyHelper" in rendered(kind=CONSUMER, country="GB")["body_text"]
    sms = rendered("sms", "firm-overdue-sms", kind=CONSUMER, country="GB")["body_text"]
    assert "Free debt advice: www.moneyhelper.org.uk" in sms
    assert sms.endswith("Reply STOP to opt out.")  # the opt-out line stays last


def test_a_disclosure_only_goes_on_its_channels():
    Disclosure.objects.create(
        name="Letters only", jurisdiction="CA", channels=["letter"], body_text="LETTER ONLY"
    )
    assert "LETTER ONLY" not in rendered(kind=CONSUMER, country="CA")["body_text"]
    letter = rendered("letter", "final-notice-letter", kind=CONSUMER, country="CA")
    assert "LETTER ONLY" in letter["body_text"]


def test_inactive_disclosures_are_not_used():
    Disclosure.objects.filter(jurisdiction="US").update(is_active=False)
    assert "attempt to collect" not in rendered(kind=CONSUMER, country="US")["body_text"]


def test_a_template_that_places_the_disclosure_gets_it_once_where_it_put_it():
    template = Template.objects.get(name="firm-overdue", language="en")
    template.body_text = "IMPORTANT: {{ disclosure }}\n\nHello {{ contact_name }}."
    template.save()
    body = rendered(kind=CONSUMER, country="US")["body_text"]
    assert body.count("attempt to collect a debt") == 1
    assert body.startswith(f"IMPORTANT: {US_NOTICE}")


def test_html_emails_get_the_disclosure_in_the_html_part_too():
    template = Template.objects.get(name="firm-overdue", language="en")
    template.body_html = "<html><body><p>Hello {{ contact_name }}</p></body></html>"
    template.save()
    content = rendered(kind=CONSUMER, country="US")
    html = content["body_html"]
    assert US_NOTICE in html and html.index(US_NOTICE) < html.index("</body>")
    assert US_NOTICE in content["body_text"]


def test_a_disclosure_with_an_unknown_variable_fails_the_notice_loudly():
    Disclosure.objects.filter(name__startswith="US consumer debt: validation").update(
        body_text="Collected by {{ compnay_name }}"
    )
    notices = send_overdue(kind=CONSUMER, country="US")
    assert notices["email"].status == "failed" and "compnay_name" in notices["email"].reason
    assert not mail.outbox


def test_preview_shows_the_disclosure_the_customer_would_get(client, manager):
    customer = CustomerFactory(kind=CONSUMER, country="US", name="Preview Person")
    ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(customer=customer, number="PV-9")
    template = Template.objects.get(name="firm-overdue", language="en")
    client.force_login(manager)
    url = reverse("admin:dunning_template_preview", args=[template.pk])
    page = client.get(url, {"customer": customer.pk}).content.decode()
    assert "PV-9" in page and US_NOTICE in page
    assert "US consumer debt: validation notice" in page  # names the disclosure it added
    business = CustomerFactory(kind=BUSINESS, country="US")
    page = client.get(url, {"customer": business.pk}).content.decode()
    assert "attempt to collect" not in page and "No disclosure applies" in page


def test_overlapping_active_disclosures_are_refused_in_the_admin(client, manager):
    client.force_login(manager)
    response = client.post(
        reverse("admin:dunning_disclosure_add"),
        {
            "name": "Second US consumer notice",
            "customer_kind": "consumer",
            "jurisdiction": "us",
            "language": "",
            "channels": ["email"],
            "body_text": "Another notice",
            "is_active": "on",
        },
    )
    assert response.status_code == 200 and "already applies here on email" in (
        response.content.decode()
    )
    assert not Disclosure.objects.filter(name="Second US consumer notice").exists()


def test_agents_can_read_but_not_change_disclosures(client, agent):
    client.force_login(agent)
    disclosure = Disclosure.objects.filter(jurisdiction="US").first()
    url = reverse("admin:dunning_disclosure_change", args=[disclosure.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"name": "hacked", "body_text": "x", "channels": ["email"]})
    assert response.status_code == 403
    disclosure.refresh_from_db()
    assert disclosure.name != "hacked"
