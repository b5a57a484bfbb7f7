"""factory-boy factories for the ledger; build exactly the rows a test needs."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.models import Activity, Contact, Customer, Invoice, Payment
from tests.clock import ON as TODAY


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-only")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        """UserFactory(role="Collections agent") puts the user in that group."""
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            self.save()


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n} Ltd")
    external_ref = factory.Sequence(lambda n: f"C{n:06d}")
    country = "US"
    timezone = "America/Chicago"
    currency = "USD"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.Sequence(lambda n: f"ap{n}@example.com")
    phone = "+14155550123"


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    customer = factory.SubFactory(CustomerFactory)
    number = factory.Sequence(lambda n: f"INV-{n:06d}")
    issued_on = factory.LazyAttribute(lambda i: i.due_on - dt.timedelta(days=30))
    due_on = TODAY
    currency = "USD"
    amount = Decimal("100.00")
    open_balance = factory.LazyAttribute(lambda i: i.amount)


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    customer = factory.SubFactory(CustomerFactory)
    amount = Decimal("100.00")
    unallocated_amount = factory.LazyAttribute(lambda p: p.amount)
    currency = "USD"
    received_on = TODAY


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    customer = factory.SubFactory(CustomerFactory)
    kind = Activity.Kind.NOTE
    text = "Called AP, invoice approved for the next payment run."


# --- Case work (tasks, routing, recoveries) ---


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "cases.Task"

    customer = factory.SubFactory(CustomerFactory)
    kind = "call"
    title = factory.Sequence(lambda n: f"Call about invoice {n}")
    due_at = factory.LazyFunction(lambda: dt.datetime(2026, 11, 23, 17, tzinfo=dt.UTC))


class InvoicePredictionFactory(factory.django.DjangoModelFactory):
    """InvoicePredictionFactory(invoice=inv, probability_late=Decimal("0.8"))."""

    class Meta:
        model = "cases.InvoicePrediction"

    invoice = factory.SubFactory(InvoiceFactory)
    customer = factory.LazyAttribute(lambda p: p.invoice.customer)
    probability_late = Decimal("0.5000")
    expected_pay_on = factory.LazyAttribute(lambda p: p.invoice.due_on)
    reasons = factory.LazyFunction(lambda: ["paid 4 of the last 5 invoices late"])
    model_version = "test-1"
    as_of = TODAY
    scored_at = factory.LazyFunction(lambda: dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC))


class RoutingRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "cases.RoutingRule"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Rule {n}")
    priority = 100

    @factory.post_generation
    def agents(self, create, extracted, **kwargs):
        """RoutingRuleFactory(agents=[alice, bob])."""
        if create and extracted:
            self.agents.set(extracted)


# --- reporting (added with the aging report) -------------------------------------------


class ScheduledReportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "reporting.ScheduledReport"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Weekly aging {n}")
    frequency = "weekly"
    weekday = 0  # Monday
    format = "pdf"

    @factory.post_generation
    def recipients(self, create, extracted, **kwargs):
        if create and extracted:
            self.recipients.set(extracted)


# --- dunning experiments and message effectiveness (issue 17, "which messages get paid") ---


def standard_email_step():
    """The seeded Standard policy's e-mail step 7 days after the due date."""
    from dunning.models import Step

    return Step.objects.get(policy__name="Standard", offset_days=7, channel="email")


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "dunning.Template"

    name = factory.Sequence(lambda n: f"Variant template {n}")
    channel = "email"
    subject = factory.LazyAttribute(lambda t: f"{t.name}: {{{{ invoice_count }}}} invoice(s)")
    body_text = factory.LazyAttribute(lambda t: f"{t.name} for {{{{ customer_name }}}}.")


class StepVariantFactory(factory.django.DjangoModelFactory):
    """StepVariantFactory(step=step, label="B", weight=3)."""

    class Meta:
        model = "dunning.StepVariant"

    step = factory.LazyFunction(lambda: standard_email_step())
    label = factory.Sequence(lambda n: f"V{n}")
    template = factory.SubFactory(TemplateFactory)
    weight = 1


class SentNoticeFactory(factory.django.DjangoModelFactory):
    """A notice the sender sent on `sent_on` (10:00 UTC) listing `invoices`:
    SentNoticeFactory(step=step, customer=c, sent_on=day, invoices=[inv])."""

    class Meta:
        model = "dunning.Notice"
        skip_postgeneration_save = True

    class Params:
        sent_on = TODAY

    customer = factory.SubFactory(CustomerFactory)
    step = factory.LazyFunction(lambda: standard_email_step())
    channel = factory.LazyAttribute(lambda n: n.step.channel)
    status = "sent"
    planned_on = factory.LazyAttribute(lambda n: n.sent_on)
    sent_at = factory.LazyAttribute(
        lambda n: dt.datetime.combine(n.sent_on, dt.time(10), tzinfo=dt.UTC)
    )

    @factory.post_generation
    def invoices(self, create, extracted, **kwargs):
        from dunning.models import NoticeInvoice

        if create and extracted:
            NoticeInvoice.objects.bulk_create(
                NoticeInvoice(notice=self, invoice=invoice, step_id=self.step_id)
                for invoice in extracted
            )
