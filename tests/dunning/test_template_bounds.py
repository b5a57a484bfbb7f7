"""Templates are bounded: a filter's width, the output's size and the render's time."""

import datetime as dt
import time
import tracemalloc
import zoneinfo

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from dunning import planner, rendering, sender, services
from dunning.models import Notice, Step, Template
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

HUGE_PAD = '{{ customer_name|ljust:"100000000" }}'
CONTEXT = {"customer_name": "Acme Rockets", "invoices": list(range(300)), "s": "x" * 1000}


def test_a_huge_padding_is_refused_before_any_memory_is_taken():
    tracemalloc.start()
    try:
        with pytest.raises(rendering.RenderError, match="ljust:100000000"):
            rendering.render_string(HUGE_PAD, CONTEXT)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # the page of the report took +418 MB


@pytest.mark.parametrize(
    "source",
    [
        '{{ customer_name|rjust:"5000" }}',
        '{{ customer_name|center:"5000" }}',
        '{{ customer_name|stringformat:"5000s" }}',
        '{{ 1.5|floatformat:"-5000" }}',
        '{{ customer_name|wordwrap:"5000" }}',
        '{{ customer_name|truncatechars:"99999999999999999999" }}',
    ],
)
def test_every_width_filter_is_bounded(source):
    name = source.split("|")[1].split(":")[0]
    with pytest.raises(rendering.RenderError, match=name):
        rendering.render_string(source, CONTEXT)


def test_widths_within_the_limit_still_work():
    text = rendering.render_string('[{{ customer_name|ljust:"20" }}]', CONTEXT)
    assert text == "[Acme Rockets        ]"
    assert rendering.render_string('{{ 2.5|floatformat:"2" }}', CONTEXT) == "2.50"


def test_doubling_a_string_with_add_stops_at_the_output_limit(settings):
    settings.TEMPLATE_MAX_OUTPUT_CHARS = 10_000
    source = "{% with a=s|add:s %}{% with b=a|add:a %}{% with c=b|add:b %}{% with d=c|add:c %}"
    source += "{{ d|add:d }}{% endwith %}{% endwith %}{% endwith %}{% endwith %}"
    with pytest.raises(rendering.RenderError, match="filter add made more than 10000"):
        rendering.render_string(source, CONTEXT)


def test_the_output_is_bounded_however_it_is_made(settings):
    settings.TEMPLATE_MAX_OUTPUT_CHARS = 50_000
    source = "{% for i in invoices %}{{ s }}{% endfor %}"  # 300 x 1000 characters
    with pytest.raises(rendering.RenderError, match="more than 50000 characters"):
        rendering.render_string(source, CONTEXT)
    assert len(rendering.render_string("{% for i in invoices %}.{% endfor %}", CONTEXT)) == 300


def test_the_render_time_is_bounded(settings):
    settings.TEMPLATE_MAX_RENDER_SECONDS = 0.3
    loops = "{% for a in invoices %}{% for b in invoices %}{% for c in invoices %}"
    source = loops + "{% endfor %}{% endfor %}{% endfor %}"  # 27 million steps
    started = time.monotonic()
    with pytest.raises(rendering.RenderError, match=r"longer than 0\.3 seconds"):
        rendering.render_string(source, CONTEXT)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("tag", ["{% lorem 100000 %}", "{% debug %}", '{% url "admin:index" %}'])
def test_tags_that_only_make_text_or_leak_are_not_in_the_language(tag):
    with pytest.raises(rendering.RenderError, match="Invalid block tag"):
        rendering.render_string(tag, CONTEXT)


@pytest.mark.django_db
def test_saving_a_template_names_the_offending_filter():
    template = Template(name="pad", channel="email", language="en", subject="Hi")
    template.body_text = "Dear " + HUGE_PAD
    with pytest.raises(ValidationError) as refused:
        template.full_clean()
    assert "ljust:100000000" in str(refused.value.message_dict["body_text"])
    template.body_text = "Dear {% with n=customer_name|center:99999 %}{{ n }}{% endwith %}"
    with pytest.raises(ValidationError, match="center:99999"):
        template.full_clean()
    template.body_text = "Dear {% lorem %}"
    with pytest.raises(ValidationError, match="lorem"):
        template.full_clean()
    template.body_text = 'Dear {{ customer_name|ljust:"30" }}'
    template.full_clean()


@pytest.mark.django_db
def test_the_admin_refuses_the_template_with_the_filter_named(client, manager, superuser):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:dunning_template_add"),
        {
            "name": "pad",
            "channel": "email",
            "language": "en",
            "tone": "reminder",
            "subject": "Hi",
            "body_text": HUGE_PAD,
            "body_html": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "ljust:100000000" in response.content.decode()
    assert not Template.objects.filter(name="pad").exists()


def _stored_unchecked(template: Template, body: str) -> None:
    """A template saved before the check existed (or written around it)."""
    Template.objects.filter(pk=template.pk).update(body_text=body)


@pytest.mark.django_db
def test_the_preview_shows_the_error_never_a_500(client, manager):
    customer = CustomerFactory(name="Preview Co")
    InvoiceFactory(customer=customer)
    template = Template.objects.get(name="firm-overdue", language="en")
    _stored_unchecked(template, HUGE_PAD)
    client.force_login(manager)
    url = reverse("admin:dunning_template_preview", args=[template.pk])
    response = client.get(url, {"customer": customer.pk})
    assert response.status_code == 200
    assert "ljust:100000000" in response.content.decode()
    assert len(response.content) < 100_000


CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


def _planned_email() -> Notice:
    customer = CustomerFactory()
    ContactFactory(customer=customer, email="ap@acme.example", is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    return Notice.objects.get(customer=customer, channel="email")


@pytest.mark.django_db
def test_the_sender_fails_the_notice_with_the_reason(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    notice = _planned_email()
    _stored_unchecked(notice.step.template, "Dear {{ contact_name }} " + HUGE_PAD)
    sender.send_due(now=dt.datetime(2026, 11, 23, 10, tzinfo=CHICAGO))
    notice.refresh_from_db()
    assert notice.status == "failed" and "ljust:100000000" in notice.reason
    assert not mail.outbox


@pytest.mark.django_db
def test_the_edit_draft_shows_the_error(settings):
    settings.DUNNING_HIGH_VALUE_THRESHOLD = "1"
    Step.objects.filter(template__name="firm-overdue", channel="email").update(
        approval=Step.Approval.ALWAYS
    )
    notice = _planned_email()
    _stored_unchecked(notice.step.template, HUGE_PAD)
    draft = services.draft(Notice.objects.get(pk=notice.pk))
    assert "ljust:100000000" in draft["error"]
    assert draft["body_text"] == ""


def test_a_template_compiled_once_renders_each_context_afresh(settings):
    source = "{% for i in invoices %}{% cycle 'a' 'b' %}{% endfor %} {{ customer_name }}"
    context = {**CONTEXT, "invoices": [1, 2, 3]}
    assert rendering.render_string(source, context) == "aba Acme Rockets"
    assert rendering.render_string(source, {**context, "customer_name": "Bolt"}) == "aba Bolt"
    settings.TEMPLATE_MAX_OUTPUT_CHARS = 5  # the limits are read at each render
    with pytest.raises(rendering.RenderError, match="more than 5 characters"):
        rendering.render_string(source, context)
