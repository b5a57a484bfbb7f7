"""REST API for the ledger: customers, contacts, invoices, payments and the timeline."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError

from . import services, timezones
from .access_log import LoggedReadsMixin, Surface
from .api_policy import MethodCheckedFirst
from .idempotency import run_once
from .models import Activity, Contact, Customer, Invoice, Payment, normalize_phone


def as_drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class SavedThroughServices:
    """Updates go through the service that writes the changes to the timeline."""

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        try:
            return self.save_edited(instance, self.context["request"].user)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc


class CustomerSerializer(SavedThroughServices, serializers.ModelSerializer):
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
        # No zone given: inferred from the country (accounts/timezones.py).
        return timezones.settle(super().validate(attrs), stored=self.instance)

    def save_edited(self, instance, by):
        return services.save_customer(customer=instance, by=by)


class ContactSerializer(serializers.ModelSerializer):
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

    def validate_phone(self, value):
        customer = self.initial_data.get("customer")
        region = ""
        if customer:
            region = Customer.objects.filter(pk=customer).values_list("country", flat=True).first()
        elif self.instance is not None:
            region = self.instance.customer.country
        try:
            return normalize_phone(value, region or "")
        except DjangoValidationError as exc:
            raise ValidationError(exc.messages) from exc


class InvoiceSerializer(SavedThroughServices, serializers.ModelSerializer):
    days_past_due = serializers.SerializerMethodField()
    aging_bucket = serializers.SerializerMethodField()

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
        return attrs

    def create(self, validated_data):
        try:
            return services.save_new_invoice(
                invoice=Invoice(**validated_data), by=self.context["request"].user
            )
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc

    def save_edited(self, instance, by):
        return services.save_invoice(invoice=instance, by=by)


class PaymentSerializer(serializers.ModelSerializer):
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
            "source",
            "external_id",
            "created_at",
        ]
        read_only_fields = ["unallocated_amount", "created_at"]

    def create(self, validated_data):
        try:
            return services.save_new_payment(
                payment=Payment(**validated_data), by=self.context["request"].user
            )
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc


class ActivitySerializer(serializers.ModelSerializer):
    actor = serializers.StringRelatedField()

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
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc


def filter_by_params(queryset, params, mapping: dict[str, str]):
    """Apply ?name=value filters; dates and datetimes are parsed, bad values refused."""
    for param, lookup in mapping.items():
        value = params.get(param)
        if value in (None, ""):
            continue
        if lookup.endswith(("_on__gte", "_on__lte")):
            parsed = parse_date(value)
        elif lookup.endswith("_at__gte"):
            parsed = parse_datetime(value) or parse_date(value)
        else:
            parsed = value
        if parsed is None:
            raise ValidationError({param: f"{value!r} is not a valid date (YYYY-MM-DD)"})
        queryset = queryset.filter(**{lookup: parsed})
    return queryset


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
    MethodCheckedFirst,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Create, read and update; ledger rows are never deleted through the API."""

    filters: dict[str, str] = {}

    def get_queryset(self):
        return filter_by_params(super().get_queryset(), self.request.query_params, self.filters)


class CustomerViewSet(LoggedReadsMixin, LedgerViewSet):
    access_customer_field = "id"
    access_list_surface, access_detail_surface = Surface.API_CUSTOMER_LIST, Surface.API_CUSTOMER
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filters = {
        "segment": "segment",
        "status": "status",
        "agent": "assigned_agent",
        "updated_since": "updated_at__gte",
    }


class ContactViewSet(LoggedReadsMixin, LedgerViewSet):
    access_list_surface, access_detail_surface = Surface.API_CONTACT_LIST, Surface.API_CONTACT
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filters = {"customer": "customer"}


class InvoiceViewSet(LedgerViewSet):
    queryset = Invoice.objects.all()
    serializer_class = InvoiceSerializer
    filters = {
        "customer": "customer",
        "status": "status",
        "currency": "currency",
        "due_from": "due_on__gte",
        "due_to": "due_on__lte",
        "updated_since": "updated_at__gte",
    }


class PaymentViewSet(
    IdempotentCreateMixin,
    MethodCheckedFirst,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Payment.objects.all()
    serializer_class = PaymentSerializer

    def get_queryset(self):
        return filter_by_params(
            super().get_queryset(),
            self.request.query_params,
            {
                "customer": "customer",
                "received_from": "received_on__gte",
                "received_to": "received_on__lte",
            },
        )


class ActivityViewSet(
    MethodCheckedFirst,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """The timeline: list and append only. PUT, PATCH and DELETE answer 405."""

    queryset = Activity.objects.select_related("actor")
    serializer_class = ActivitySerializer

    def get_queryset(self):
        return filter_by_params(
            super().get_queryset(),
            self.request.query_params,
            {"customer": "customer", "invoice": "invoice", "kind": "kind"},
        )


def register(router) -> None:
    router.register("customers", CustomerViewSet)
    router.register("contacts", ContactViewSet)
    router.register("invoices", InvoiceViewSet)
    router.register("payments", PaymentViewSet)
    router.register("activities", ActivityViewSet)
