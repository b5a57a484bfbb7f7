"""REST API for intake: the bulk invoice upsert, and batches and their rejected rows (read)."""

import django_filters
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from accounts.api import IdFilter, LedgerFilterSet, LedgerViews, MomentFilter
from accounts.api_policy import StrictModelPermissions
from accounts.idempotency import run_once
from accounts.models import Invoice

from .intake import batches, inbox, invoices
from .intake.batches import RowRejected
from .models import ImportProfile, InboxItem, IntakeBatch, Rejection


class IntakeBatchSerializer(serializers.ModelSerializer):
    # Batches the system opened itself (a scheduled import) have no user, and only
    # spreadsheet loads have a profile.
    created_by = serializers.StringRelatedField(allow_null=True)
    profile = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = IntakeBatch
        fields = [
            "id",
            "source",
            "kind",
            "profile",
            "filename",
            "is_dry_run",
            "status",
            "error",
            "rows_read",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "warned",
            "created_by",
            "started_at",
            "finished_at",
        ]


class RejectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rejection
        fields = [
            "id",
            "batch",
            "row_number",
            "raw",
            "errors",
            "reason",
            "amount",
            "currency",
            "invoices_blocked",
            "status",
            "resolution",
            "resolved_at",
            "created_at",
        ]


class IntakeBatchFilter(LedgerFilterSet):
    source = django_filters.ChoiceFilter(choices=IntakeBatch.Source.choices)
    kind = django_filters.ChoiceFilter(choices=IntakeBatch.Kind.choices)
    status = django_filters.ChoiceFilter(choices=IntakeBatch.Status.choices)
    started_since = MomentFilter(field_name="started_at", lookup_expr="gte")

    class Meta:
        model = IntakeBatch
        fields = []


class RejectionFilter(LedgerFilterSet):
    batch = IdFilter(field_name="batch")
    status = django_filters.ChoiceFilter(choices=Rejection.Status.choices)

    class Meta:
        model = Rejection
        fields = []


class IntakeBatchViewSet(LedgerViews, viewsets.ReadOnlyModelViewSet):
    queryset = IntakeBatch.objects.select_related("profile", "created_by")
    serializer_class = IntakeBatchSerializer
    filterset_class = IntakeBatchFilter


class RejectionViewSet(LedgerViews, viewsets.ReadOnlyModelViewSet):
    queryset = Rejection.objects.all()
    serializer_class = RejectionSerializer
    filterset_class = RejectionFilter


def register(router) -> None:
    router.register("intake-batches", IntakeBatchViewSet)
    router.register("rejections", RejectionViewSet)


# What an item of a bulk upsert may carry: the pipeline's ledger fields.
BULK_FIELDS = (
    "number",
    "customer_ref",
    "customer_name",
    "email",
    "phone",
    "contact_name",
    "country",
    "issued_on",
    "due_on",
    "currency",
    "amount",
    "amount_due",
    "reference",
    "paid_on",
    "amount_paid",
    "disputed",
)
MONEY_FIELDS = ("amount", "amount_due", "amount_paid")
MAX_BULK_ITEMS = 5000


def api_profile(source: str) -> ImportProfile:
    """An unsaved profile: ISO dates, plain decimals, the fields an API caller must send.

    Strict: a program can correct and resend an item, so a bad e-mail or phone rejects
    it with the reason rather than loading it without (the spreadsheet profiles warn)."""
    return ImportProfile(
        name="api",
        label="REST API",
        source=source,
        date_formats=["%Y-%m-%d"],
        decimal_separator=".",
        thousands_separator="",
        required=["number", "customer_name", "issued_on", "due_on", "currency", "amount"],
        warn_only=[],
    )


class BulkInvoiceItem(serializers.Serializer):
    number = serializers.CharField()
    customer_ref = serializers.CharField(required=False)
    customer_name = serializers.CharField()
    email = serializers.EmailField(required=False)
    phone = serializers.CharField(required=False)
    contact_name = serializers.CharField(required=False)
    country = serializers.CharField(required=False, help_text="ISO 3166 code")
    issued_on = serializers.DateField()
    due_on = serializers.DateField()
    currency = serializers.CharField(help_text="ISO 4217 code")
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    amount_due = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, help_text="what the source says is due"
    )
    reference = serializers.CharField(required=False)
    paid_on = serializers.DateField(
        required=False,
        help_text="the day it was paid in full or in part: books a payment dated that day",
    )
    amount_paid = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text="paid in all by paid_on (at most the amount; the whole amount if omitted)",
    )
    disputed = serializers.BooleanField(required=False, help_text="opens a dispute, once")


class BulkInvoiceRequest(serializers.Serializer):
    source = serializers.CharField(required=False, default="api")
    invoices = BulkInvoiceItem(many=True)


class BulkRowError(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class BulkInvoiceResponse(serializers.Serializer):
    batch = serializers.IntegerField()
    read = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    warned = serializers.IntegerField(help_text="items loaded with a warning (none: strict)")
    errors = BulkRowError(many=True)


class BulkInvoiceQueued(serializers.Serializer):
    batch = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.URLField(help_text="poll it: the batch's status and counts")


class InvoiceBulkUpsert(APIView):
    """POST /api/v1/invoices/bulk/: create or update up to 5,000 invoices in one batch.

    Body: {"source": "erp", "invoices": [{number, customer_ref, customer_name, email,
    phone, contact_name, country, issued_on, due_on, currency, amount, amount_due,
    reference, paid_on, amount_paid, disputed}, ...]}. A paid_on books a payment received
    that day and its allocation (amount_paid, or the whole amount); loading the same item
    again books nothing, a larger amount_paid books the difference; disputed opens a
    dispute once. Amounts are decimal strings. Valid items load; invalid ones are
    rejected with their index and a reason per field, and kept in the dead-letter list.
    Send an Idempotency-Key header: a retried request returns the first answer.

    With `Prefer: respond-async` the request is stored (one batch, one inbox row) and
    answered 202 with the batch's id and URL; a worker loads it, and the batch turns
    *completed* with its counts (or *failed* with the reason). Without it the answer
    waits for the load, as it always has (clients written against the 200 rely on it).
    """

    permission_classes = [StrictModelPermissions]
    queryset = Invoice.objects.none()  # for the model permission (add_invoice)

    @extend_schema(
        request=BulkInvoiceRequest,
        responses={200: BulkInvoiceResponse, 202: BulkInvoiceQueued},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key", str, OpenApiParameter.HEADER, description="retry-safe key"
            ),
            OpenApiParameter(
                "Prefer",
                str,
                OpenApiParameter.HEADER,
                description="respond-async: store the request, answer 202, load on a worker",
            ),
        ],
    )
    def post(self, request):
        handler = self._queue if wants_async(request) else self._upsert
        return run_once(request, endpoint="invoices-bulk", handler=lambda: handler(request))

    @staticmethod
    def _read(request):
        """(items, source, None) or (None, None, a 400 response)."""
        body = request.data if isinstance(request.data, dict) else {}
        items = body.get("invoices")
        source = inbox.storable(str(body.get("source") or "api").strip()[:40])
        if not isinstance(items, list) or not items:
            return None, None, Response({"invoices": ["a non-empty list is required"]}, status=400)
        if len(items) > MAX_BULK_ITEMS:
            return (
                None,
                None,
                Response({"invoices": [f"at most {MAX_BULK_ITEMS} items per request"]}, status=400),
            )
        return items, source, None

    def _upsert(self, request):
        items, source, refused = self._read(request)
        if refused is not None:
            return refused
        batch = batches.open_batch(source=IntakeBatch.Source.API, kind="invoices", by=request.user)
        outcome = load_bulk_items(batch=batch, items=items, source=source, by=request.user)
        return Response(outcome, status=200)

    def _queue(self, request):
        items, source, refused = self._read(request)
        if refused is not None:
            return refused
        # What PostgreSQL cannot store (NUL...) is made storable here and the item marked
        # refused, so the worker rejects it with the reason instead of failing the batch.
        problems = {
            str(index): errors
            for index, item in enumerate(items)
            if (errors := inbox.unstorable_fields(item))
        }
        with transaction.atomic():
            batch = batches.open_batch(
                source=IntakeBatch.Source.API, kind="invoices", by=request.user
            )
            inbox.accept(
                source=InboxItem.Source.API_BULK,
                key=f"batch:{batch.pk}",
                payload={
                    "source": source,
                    "invoices": inbox.storable(items),
                    "refused": inbox.storable(problems),
                },
                batch=batch,
                by=request.user,
            )
        url = reverse("intakebatch-detail", args=[batch.pk], request=request)
        return Response({"batch": batch.pk, "status": "queued", "url": url}, status=202)


def wants_async(request) -> bool:
    """RFC 7240: `Prefer: respond-async` asks for 202 now and the work later."""
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().lower() == "respond-async" for part in prefer.split(","))


def load_bulk_items(*, batch, items: list, source: str, by, refused: dict | None = None) -> dict:
    """Parse and upsert one bulk request's items into `batch`, then close it; returns the
    counts and the rejected items' errors. Used by the view and by the worker alike."""
    tally = batches.Tally()
    parser = invoices.InvoiceParser(api_profile(source))
    refused = refused or {}
    errors, records = [], []
    for index, item in enumerate(items):
        try:
            problems = refused.get(str(index)) or inbox.unstorable_fields(item)
            if problems:
                raise RowRejected(problems)
            records.append(_parse_bulk_item(parser, index, item))
        except RowRejected as exc:
            raw = item if isinstance(item, dict) else {"item": item}
            batches.reject(
                tally,
                batch,
                row_number=index + 1,
                raw=inbox.storable(raw),
                errors=exc.errors,
                at_stake=batches.amount_at_stake(raw.get("amount"), raw.get("currency")),
                invoices_blocked=1,
            )
            errors.append({"index": index, "errors": exc.errors})
    # Rows the pipeline rejects (an invoice of another customer, a name that matches
    # several customers...) are answered with their index too, like the parser's.
    refused_later = []

    def heard(outcome) -> None:
        if outcome.outcome == "rejected":
            refused_later.append({"index": outcome.row_number - 1, "errors": outcome.changes})

    invoices.upsert_invoices(records, batch=batch, by=by, source=source, tally=tally, on_row=heard)
    batches.close_batch(batch, tally)
    errors = sorted([*errors, *refused_later], key=lambda error: error["index"])
    return {**batch.counts(), "errors": errors}


def load_stored_bulk(item: InboxItem) -> str:
    """The worker's side of a queued bulk request: load it into the batch opened for it."""
    counts = load_bulk_items(
        batch=item.batch,
        items=item.payload["invoices"],
        source=item.payload["source"],
        by=item.created_by,
        refused=item.payload.get("refused"),
    )
    return ", ".join(
        f"{name} {counts[name]}" for name in ("read", "created", "updated", "unchanged", "rejected")
    )


def _parse_bulk_item(parser, index: int, item):
    if not isinstance(item, dict):
        raise RowRejected({"item": ["must be an object"]})
    unknown = sorted(set(item) - set(BULK_FIELDS))
    floats = [name for name in MONEY_FIELDS if isinstance(item.get(name), float | int)]
    problems = {}
    if unknown:
        problems["item"] = [f"unknown field(s): {', '.join(unknown)}"]
    for name in floats:
        problems[name] = ['send amounts as decimal strings, e.g. "1250.00"']
    if problems:
        raise RowRejected(problems)
    return parser.parse(item, row_number=index + 1, raw=item)
