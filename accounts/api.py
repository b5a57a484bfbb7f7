"""REST API for the ledger: customers, contacts, invoices, payments and the timeline.

The API keeps the console's rules (accounts.permissions): an agent edits only their own
and unassigned customers (`WorksTheCustomer`), the fields reserved to managers and
finance are refused by name, and every write goes through the service the console
calls, which checks the same rules again. Every list filter is declared in a FilterSet
(`LedgerFilterSet`): a bad value answers 400 naming the parameter, and the OpenAPI
schema lists it with its type.
"""

import datetime as dt

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.views import exception_handler as drf_exception_handler

from . import services, timezones
from .access_log import LoggedReadsMixin, Surface
from .api_policy import CONTROL_CHARACTERS, MAX_ID, MethodCheckedFirst
from .idempotency import run_once
from .models import Activity, Contact, Customer, Invoice, Payment, normalize_phone
from .permissions import can_work, locked_customer_fields


def as_drf_error(exc: DjangoValidationError) -> ValidationError:
    """A model's or service's ValidationError as the API's 400, keyed by field."""
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


def exception_handler(exc, context):
    """REST framework's handler, and a ValidationError from a model or a service that no
    serializer translated answers 400 naming the field instead of 500."""
    if isinstance(exc, DjangoValidationError):
        exc = as_drf_error(exc)
    return drf_exception_handler(exc, context)


def refuse_control_characters(value) -> None:
    if isinstance(value, str) and CONTROL_CHARACTERS.search(value):
        raise ValidationError("Control characters are not allowed in text.")


class PlainText:
    """A serializer whose writable text fields refuse control characters (NUL must never
    reach PostgreSQL, and the rest break XML exports), with a 400 naming the field."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            if isinstance(field, serializers.CharField) and not field.read_only:
                field.validators = [*field.validators, refuse_control_characters]
        return fields


class SavedThroughServices:
    """Creates and updates go through the service that checks the rules and writes the
    timeline; its ValidationError answers 400 and its PermissionDenied 403."""

    def create(self, validated_data):
        return self._through_service(self.Meta.model(**validated_data))

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return self._through_service(instance)

    def _through_service(self, instance):
        try:
            return self.save_through_service(instance, self.context["request"].user)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc


class CustomerSerializer(SavedThroughServices, PlainText, serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "source",
            "external_ref",
            "kind",
            "segment",
            "industry",
            "country",
            "timezone",
            "timezone_source",
            "timezone_region",
            "language",
            "currency",
            "credit_limit",
            "assigned_agent",
            "status",
            "dunning_paused_until",
            "dunning_pause_reason",
            "do_not_contact",
            "cease_communication",
            "is_in_dispute",
            "is_in_payment_plan",
            "is_bankrupt",
            "created_at",
            "updated_at",
        ]
        # Assignment and pauses go through their own checked services, not a field write.
        read_only_fields = [
            "assigned_agent",
            "dunning_paused_until",
            "dunning_pause_reason",
            "timezone_source",
            "timezone_region",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs):
        """Refuse, by name, a change to a field the user's role may not change (the
        console shows it read-only; the service would refuse it too)."""
        locked = set(locked_customer_fields(self.context["request"].user))
        default = Customer()
        refused = sorted(
            name
            for name, value in attrs.items()
            if name in locked and value != getattr(self.instance or default, name)
        )
        if refused:
            raise PermissionDenied(
                {name: ["Only managers and finance may change this field."] for name in refused}
            )
        # No zone given: inferred from the country (accounts/timezones.py).
        return timezones.settle(attrs, stored=self.instance)

    def save_through_service(self, customer, by):
        return services.save_customer(customer=customer, by=by)


class ContactSerializer(SavedThroughServices, PlainText, serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "id",
            "customer",
            "name",
            "role",
            "email",
            "phone",
            "is_primary",
            "email_opted_out_at",
            "sms_opted_out_at",
            "call_opted_out_at",
        ]
        read_only_fields = ["email_opted_out_at", "sms_opted_out_at", "call_opted_out_at"]
        # One primary contact per customer: save_contact checks it and names is_primary
        # (REST framework's validator for the constraint names no field).
        validators = []

    def validate(self, attrs):
        customer = attrs.get("customer")
        if self.instance is not None:
            if customer is not None and customer != self.instance.customer:
                raise ValidationError({"customer": ["A contact cannot move to another customer."]})
            customer = self.instance.customer
        if attrs.get("phone"):
            try:
                attrs["phone"] = normalize_phone(attrs["phone"], customer.country)
            except DjangoValidationError as exc:
                raise ValidationError({"phone": exc.messages}) from exc
        return attrs

    def save_through_service(self, contact, by):
        return services.save_contact(contact=contact, by=by)


class InvoiceSerializer(SavedThroughServices, PlainText, serializers.ModelSerializer):
    days_past_due = serializers.SerializerMethodField()
    aging_bucket = serializers.SerializerMethodField()
    # Settlement history, on creation only: a payment received that day and its allocation.
    paid_on = serializers.DateField(
        write_only=True,
        required=False,
        help_text="on creation: the day it was paid; books a payment dated that day",
    )
    amount_paid = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        write_only=True,
        required=False,
        help_text="on creation, with paid_on: paid in all (at most the amount; default all)",
    )

    class Meta:
        model = Invoice
        fields = [
            "id",
            "customer",
            "number",
            "source",
            "external_id",
            "issued_on",
            "due_on",
            "currency",
            "amount",
            "open_balance",
            "status",
            "reference",
            "pay_link",
            "days_past_due",
            "aging_bucket",
            "created_at",
            "updated_at",
            "paid_on",
            "amount_paid",
        ]
        read_only_fields = ["open_balance", "status", "created_at", "updated_at"]

    def get_days_past_due(self, invoice) -> int:
        return invoice.days_past_due()

    def get_aging_bucket(self, invoice) -> str:
        return invoice.aging_bucket()

    def validate(self, attrs):
        if self.instance is not None:
            for field in ("amount", "currency", "customer"):
                if field in attrs and attrs[field] != getattr(self.instance, field):
                    raise ValidationError({field: "cannot change once the invoice is issued"})
            for field in ("paid_on", "amount_paid"):
                if field in attrs:
                    raise ValidationError({field: "only on creation; record later payments"})
            return attrs
        paid_on, amount_paid = attrs.get("paid_on"), attrs.get("amount_paid")
        if amount_paid is not None and paid_on is None:
            raise ValidationError({"paid_on": "the day it was paid is required with amount_paid"})
        if amount_paid is not None and amount_paid <= 0:
            raise ValidationError({"amount_paid": "must be more than zero"})
        problems = services.paid_history_problems(
            paid_on=paid_on,
            amount_paid=amount_paid,
            amount=attrs.get("amount"),
            issued_on=attrs.get("issued_on"),
        )
        if problems:
            raise ValidationError(problems)
        return attrs

    def create(self, validated_data):
        self._paid = (validated_data.pop("paid_on", None), validated_data.pop("amount_paid", None))
        return super().create(validated_data)

    @transaction.atomic
    def save_through_service(self, invoice, by):
        if invoice.pk is not None:
            return services.save_invoice(invoice=invoice, by=by)
        invoice = services.save_new_invoice(invoice=invoice, by=by)
        paid_on, amount_paid = getattr(self, "_paid", (None, None))
        if paid_on is not None:
            services.book_paid_history(
                invoice=invoice, paid_on=paid_on, amount=amount_paid or invoice.amount, by=by
            )
            invoice.refresh_from_db()
        return invoice


class PaymentSerializer(SavedThroughServices, PlainText, serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = [
            "id",
            "customer",
            "kind",
            "amount",
            "currency",
            "unallocated_amount",
            "received_on",
            "method",
            "remittance_reference",
            "payer_name",
            "payer_account",
            "source",
            "external_id",
            "created_at",
        ]
        read_only_fields = ["unallocated_amount", "created_at"]

    def save_through_service(self, payment, by):
        return services.save_new_payment(payment=payment, by=by)


class ActivitySerializer(PlainText, serializers.ModelSerializer):
    # The system's own entries (nightly runs, webhooks) have no actor.
    actor = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = Activity
        fields = [
            "id",
            "customer",
            "invoice",
            "kind",
            "channel",
            "outcome",
            "actor",
            "text",
            "details",
            "occurred_at",
        ]
        read_only_fields = ["channel", "actor", "details", "occurred_at"]

    def validate_kind(self, value):
        if value not in (Activity.Kind.NOTE, Activity.Kind.CALL):
            raise ValidationError("only notes and calls can be added through the API")
        return value

    def validate(self, attrs):
        invoice = attrs.get("invoice")
        if invoice is not None and invoice.customer_id != attrs["customer"].pk:
            raise ValidationError({"invoice": ["This invoice belongs to another customer."]})
        return attrs

    def create(self, validated_data):
        user = self.context["request"].user
        try:
            if validated_data["kind"] == Activity.Kind.CALL:
                return services.log_call(
                    customer=validated_data["customer"],
                    outcome=validated_data.get("outcome", ""),
                    text=validated_data.get("text", ""),
                    invoice=validated_data.get("invoice"),
                    by=user,
                )
            return services.add_note(
                customer=validated_data["customer"],
                text=validated_data.get("text", ""),
                invoice=validated_data.get("invoice"),
                by=user,
            )
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc


# --- Filters ------------------------------------------------------------------------------


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A row's id: a whole number within the database's range, else 400 naming the filter."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class MomentField(forms.DateTimeField):
    """A moment, given with any offset, compared in UTC: PostgreSQL refuses offsets past
    ±15:59 (a generated "-17:51" answered 500), and the offset says nothing more."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(dt.UTC)
        except (OverflowError, ValueError) as exc:
            raise forms.ValidationError(
                "Enter a moment between the years 1 and 9999.", code="invalid"
            ) from exc


class MomentFilter(django_filters.DateTimeFilter):
    """A date and time filter compared in UTC (see MomentField)."""

    field_class = MomentField


class LedgerFilterSet(django_filters.FilterSet):
    """Every list filter of the API: each parameter is parsed by its form field, and a bad
    value answers 400 naming it (not 500 from the database)."""


class LedgerFilterBackend(DjangoFilterBackend):
    """django-filter's backend without its HTML form in the browsable API (the form
    would list every customer as a choice)."""

    def to_html(self, request, queryset, view):
        return ""


class CustomerFilter(LedgerFilterSet):
    segment = django_filters.ChoiceFilter(choices=Customer.Segment.choices)
    status = django_filters.ChoiceFilter(choices=Customer.Status.choices)
    agent = IdFilter(field_name="assigned_agent")
    updated_since = MomentFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = []


class ContactFilter(LedgerFilterSet):
    customer = IdFilter(field_name="customer")

    class Meta:
        model = Contact
        fields = []


class InvoiceFilter(LedgerFilterSet):
    customer = IdFilter(field_name="customer")
    status = django_filters.ChoiceFilter(choices=Invoice.Status.choices)
    currency = django_filters.CharFilter(max_length=3)
    due_from = django_filters.DateFilter(field_name="due_on", lookup_expr="gte")
    due_to = django_filters.DateFilter(field_name="due_on", lookup_expr="lte")
    updated_since = MomentFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Invoice
        fields = []


class PaymentFilter(LedgerFilterSet):
    customer = IdFilter(field_name="customer")
    received_from = django_filters.DateFilter(field_name="received_on", lookup_expr="gte")
    received_to = django_filters.DateFilter(field_name="received_on", lookup_expr="lte")

    class Meta:
        model = Payment
        fields = []


class ActivityFilter(LedgerFilterSet):
    customer = IdFilter(field_name="customer")
    invoice = IdFilter(field_name="invoice")
    kind = django_filters.ChoiceFilter(choices=Activity.Kind.choices)

    class Meta:
        model = Activity
        fields = []


# --- Views --------------------------------------------------------------------------------


class WorksTheCustomer(BasePermission):
    """Writes to a row need the right to work its customer (`permissions.can_work`):
    agents their own and unassigned customers, managers and finance everyone's."""

    message = "This customer is assigned to another agent."

    def has_object_permission(self, request, view, obj):
        if request.method in SAFE_METHODS:
            return True
        customer = obj if isinstance(obj, Customer) else obj.customer
        return can_work(request.user, customer)


class LedgerViews(MethodCheckedFirst):
    """What every API view shares: role rights, the customer's agent for writes, the
    declared filters, and a model's ValidationError answered 400."""

    permission_classes = [*viewsets.GenericViewSet.permission_classes, WorksTheCustomer]
    filter_backends = [LedgerFilterBackend]

    def get_exception_handler(self):
        return exception_handler


class IdempotentCreateMixin:
    """POST with an Idempotency-Key header creates once; retries get the first answer."""

    def create(self, request, *args, **kwargs):
        return run_once(
            request,
            endpoint=f"{self.basename}-create",
            handler=lambda: super(IdempotentCreateMixin, self).create(request, *args, **kwargs),
        )


class LedgerViewSet(
    IdempotentCreateMixin,
    LedgerViews,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Create, read and update; ledger rows are never deleted through the API."""


class CustomerViewSet(LoggedReadsMixin, LedgerViewSet):
    access_customer_field = "id"
    access_list_surface, access_detail_surface = Surface.API_CUSTOMER_LIST, Surface.API_CUSTOMER
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter


class ContactViewSet(LoggedReadsMixin, LedgerViewSet):
    access_list_surface, access_detail_surface = Surface.API_CONTACT_LIST, Surface.API_CONTACT
    queryset = Contact.objects.select_related("customer")
    serializer_class = ContactSerializer
    filterset_class = ContactFilter


class InvoiceViewSet(LedgerViewSet):
    queryset = Invoice.objects.select_related("customer")
    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter


class PaymentViewSet(
    IdempotentCreateMixin,
    LedgerViews,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Payment.objects.all()
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter


class ActivityViewSet(
    LedgerViews,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """The timeline: list and append only. PUT, PATCH and DELETE answer 405."""

    queryset = Activity.objects.select_related("actor")
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter


def register(router) -> None:
    router.register("customers", CustomerViewSet)
    router.register("contacts", ContactViewSet)
    router.register("invoices", InvoiceViewSet)
    router.register("payments", PaymentViewSet)
    router.register("activities", ActivityViewSet)
