"""Spreadsheet imports of customers, contacts and payments through django-import-export.

Each resource finds a row's record by its key, validates every cell, and writes through
the ledger services, so the timeline is kept as for any other change. A confirmed import
is one intake batch: rows are counted as created, updated, unchanged or rejected, and each
rejected row is kept as a Rejection with its row number, raw values and errors per column.
Rows are numbered as in the spreadsheet: the header is row 1. A rejected row corrected by
finance goes through its resource again (`retry_rejection`), as a batch of its own.
"""

import datetime as dt
from decimal import Decimal

import tablib
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets
from import_export.results import RowResult

from accounts import services
from accounts.models import ZERO, Contact, Customer, Payment, normalize_phone
from accounts.money import ISO_4217, to_amount

from .intake import batches
from .models import IntakeBatch, Rejection

DEFAULT_SOURCE = "spreadsheet"  # the source the generic-csv invoice profile gives customers
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")
OUTCOMES = {
    RowResult.IMPORT_TYPE_NEW: "created",
    RowResult.IMPORT_TYPE_UPDATE: "updated",
    RowResult.IMPORT_TYPE_SKIP: "unchanged",
    RowResult.IMPORT_TYPE_INVALID: "rejected",
    RowResult.IMPORT_TYPE_ERROR: "rejected",
}


class TextWidget(widgets.CharWidget):
    """Text with the spreadsheet's stray spaces removed; a number cell read as its digits."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return (super().clean(value, row, **kwargs) or "").strip()


class UpperWidget(TextWidget):
    def clean(self, value, row=None, **kwargs):
        return super().clean(value, row, **kwargs).upper()


class AmountWidget(widgets.Widget):
    """A money amount, exact: never through float arithmetic, never silently rounded."""

    def clean(self, value, row=None, **kwargs):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, float):
            # An XLSX number cell; its shortest repr is the number the user typed.
            value = repr(value)
        try:
            amount = to_amount(value)
        except ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from exc
        if amount != Decimal(str(value).strip()):
            raise ValueError(
                _("%(value)s has more decimals than the ledger keeps (two).") % {"value": value}
            )
        return amount

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class DateWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        if value in (None, ""):
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        for date_format in DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, date_format).date()
            except ValueError:
                continue
        raise ValueError(
            _("%(value)r is not a date; use YYYY-MM-DD or DD/MM/YYYY.") % {"value": value}
        )


class BooleanWidget(widgets.Widget):
    TRUE = {"1", "true", "yes", "y", "x"}
    FALSE = {"", "0", "false", "no", "n"}

    def clean(self, value, row=None, **kwargs):
        text = str(value if value is not None else "").strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValueError(_("%(value)r is not yes or no.") % {"value": value})


class CustomerWidget(widgets.Widget):
    """A customer named by its external reference (and `customer_source`, when given)."""

    def __init__(self, *, required: bool):
        super().__init__()
        self.required = required

    def clean(self, value, row=None, **kwargs):
        ref = TextWidget().clean(value)
        if not ref:
            if self.required:
                raise ValueError(_("Required: the customer's reference."))
            return None
        matches = Customer.objects.filter(external_ref=ref)
        source = TextWidget().clean((row or {}).get("customer_source"))
        if source:
            matches = matches.filter(source=source)
        found = list(matches[:2])
        if not found:
            raise ValueError(_("No customer has the reference %(ref)r.") % {"ref": ref})
        if len(found) > 1:
            raise ValueError(
                _("Several customers have the reference %(ref)r; add a customer_source column.")
                % {"ref": ref}
            )
        return found[0]

    def render(self, value, obj=None, **kwargs):
        return value.external_ref if value is not None else ""


class IntakeResource(resources.ModelResource):
    """What the three imports share: keys, row numbers, errors per column, the batch."""

    batch_kind: str = ""

    class Meta:
        skip_unchanged = True
        report_skipped = True
        store_row_values = True
        clean_model_instances = True
        use_transactions = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.user = None

    # --- reading rows ------------------------------------------------------------------

    def before_import(self, dataset, **kwargs):
        self.user = kwargs.get("user")
        if "source" in self.get_import_id_fields() and "source" not in dataset.headers:
            dataset.append_col([""] * len(dataset), header="source")

    def get_instance(self, instance_loader, row):
        """The record the row's key names, or None; a bad or missing key is a row error."""
        errors, lookup = {}, {}
        for name in self.get_import_id_fields():
            field = self.fields[name]
            try:
                value = field.clean(row)
            except ValueError as exc:
                errors[field.attribute] = [str(exc)]
                continue
            if value in (None, ""):
                errors[field.attribute] = [_("Required: part of the key that finds the row.")]
                continue
            lookup[self.key_lookup(field.attribute)] = value
        if errors:
            raise ValidationError(errors)
        return self.get_queryset().filter(**lookup).order_by("pk").first()

    def key_lookup(self, attribute: str) -> str:
        return attribute

    def import_row(self, row, instance_loader, **kwargs):
        row_result = super().import_row(row, instance_loader, **kwargs)
        row_result.row_number = kwargs["row_number"] + 1  # the header is row 1
        return row_result

    # --- writing rows ------------------------------------------------------------------

    def do_instance_save(self, instance, is_create):
        try:
            with transaction.atomic():
                self.save_record(instance, is_create=is_create)
        except IntegrityError as exc:
            raise ValidationError(
                {NON_FIELD_ERRORS: [_("The database refused this row: %(e)s") % {"e": exc}]}
            ) from exc

    def save_record(self, instance, *, is_create: bool) -> None:
        instance.save()

    # --- the batch ---------------------------------------------------------------------

    def after_import(self, dataset, result, **kwargs):
        """Record a confirmed import as an intake batch; a preview writes nothing.

        ModelResource.after_import is not called: it resets the table's id sequence to
        MAX(id), which can hand out an id a concurrent insert already holds, and imports
        never carry ids.
        """
        if kwargs.get("dry_run"):
            return
        batch = batches.open_batch(
            source=IntakeBatch.Source.SPREADSHEET,
            kind=self.batch_kind,
            by=self.user,
            filename=(kwargs.get("file_name") or "")[:255],
        )
        tally = batches.Tally()
        for row_result in result.rows:
            outcome = OUTCOMES[row_result.import_type]
            if outcome == "rejected":
                batches.reject(
                    tally,
                    batch,
                    row_number=row_result.row_number,
                    raw=dict(row_result.row_values or {}),
                    errors=self.row_errors(row_result),
                )
            else:
                setattr(tally, outcome, getattr(tally, outcome) + 1)
        result.intake_batch = batches.close_batch(batch, tally)

    def row_errors(self, row_result) -> dict[str, list[str]]:
        """{column: [messages]} for a rejected row, named as in the spreadsheet."""
        columns = {field.attribute: field.column_name for field in self.get_import_fields()}
        if row_result.validation_error is not None:
            error = row_result.validation_error
            found = error.message_dict if hasattr(error, "error_dict") else {"row": error.messages}
        else:
            found = {"row": [str(each.error) for each in row_result.errors]}
        return {
            ("row" if name == NON_FIELD_ERRORS else columns.get(name, name)): list(messages)
            for name, messages in found.items()
        }


def _source_field():
    return fields.Field(
        attribute="source", column_name="source", widget=TextWidget(), default=DEFAULT_SOURCE
    )


class CustomerResource(IntakeResource):
    batch_kind = IntakeBatch.Kind.CUSTOMERS
    source = _source_field()
    external_ref = fields.Field("external_ref", "external_ref", widget=TextWidget())
    name = fields.Field("name", "name", widget=TextWidget())
    kind = fields.Field("kind", "kind", widget=TextWidget(), default=Customer.Kind.BUSINESS)
    segment = fields.Field(
        "segment", "segment", widget=TextWidget(), default=Customer.Segment.STANDARD
    )
    industry = fields.Field("industry", "industry", widget=TextWidget())
    country = fields.Field("country", "country", widget=UpperWidget())
    timezone = fields.Field("timezone", "timezone", widget=TextWidget(), default="UTC")
    language = fields.Field("language", "language", widget=TextWidget(), default="en")
    currency = fields.Field("currency", "currency", widget=UpperWidget(), default="USD")
    credit_limit = fields.Field("credit_limit", "credit_limit", widget=AmountWidget())

    class Meta(IntakeResource.Meta):
        model = Customer
        name = _("Customers (key: source + external_ref)")
        import_id_fields = ["source", "external_ref"]
        fields = [
            "source",
            "external_ref",
            "name",
            "kind",
            "segment",
            "industry",
            "country",
            "timezone",
            "language",
            "currency",
            "credit_limit",
        ]

    def save_record(self, instance, *, is_create):
        services.save_customer(customer=instance, by=self.user)


class ContactResource(IntakeResource):
    batch_kind = IntakeBatch.Kind.CONTACTS
    customer = fields.Field("customer", "customer_ref", widget=CustomerWidget(required=True))
    email = fields.Field("email", "email", widget=TextWidget())
    name = fields.Field("name", "name", widget=TextWidget())
    role = fields.Field("role", "role", widget=TextWidget())
    phone = fields.Field("phone", "phone", widget=TextWidget())
    is_primary = fields.Field("is_primary", "is_primary", widget=BooleanWidget())

    class Meta(IntakeResource.Meta):
        model = Contact
        name = _("Contacts (key: customer_ref + email)")
        import_id_fields = ["customer", "email"]
        fields = ["customer", "email", "name", "role", "phone", "is_primary"]

    def key_lookup(self, attribute):
        return "email__iexact" if attribute == "email" else attribute

    def import_instance(self, instance, row, **kwargs):
        """Set the fields, then put the phone in E.164 for the customer's country."""
        stored_email = instance.email
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if stored_email.lower() == instance.email.lower():
            instance.email = stored_email  # the key matched; a change of case is no change
        if "phone" not in errors and instance.phone:
            region = instance.customer.country if instance.customer_id else ""
            try:
                instance.phone = normalize_phone(instance.phone, region)
            except ValidationError as exc:
                errors["phone"] = exc.messages
        if errors:
            raise ValidationError(errors)


class PaymentResource(IntakeResource):
    """Payments are recorded once: a known external_id may update only its description."""

    batch_kind = IntakeBatch.Kind.PAYMENTS
    # Never changed on a recorded payment: its money, and whose money it is.
    FIXED = ("amount", "currency", "kind", "customer")

    source = _source_field()
    external_id = fields.Field("external_id", "external_id", widget=TextWidget())
    customer = fields.Field("customer", "customer_ref", widget=CustomerWidget(required=False))
    kind = fields.Field("kind", "kind", widget=TextWidget(), default=Payment.Kind.PAYMENT)
    amount = fields.Field("amount", "amount", widget=AmountWidget())
    currency = fields.Field("currency", "currency", widget=UpperWidget())
    received_on = fields.Field("received_on", "received_on", widget=DateWidget())
    method = fields.Field(
        "method", "method", widget=TextWidget(), default=Payment.Method.BANK_TRANSFER
    )
    remittance_reference = fields.Field(
        "remittance_reference", "remittance_reference", widget=TextWidget()
    )

    class Meta(IntakeResource.Meta):
        model = Payment
        name = _("Payments (key: source + external_id)")
        import_id_fields = ["source", "external_id"]
        fields = [
            "source",
            "external_id",
            "customer",
            "kind",
            "amount",
            "currency",
            "received_on",
            "method",
            "remittance_reference",
        ]

    def import_instance(self, instance, row, **kwargs):
        recorded = None
        if instance.pk is not None:
            recorded = {name: getattr(instance, name) for name in self.FIXED}
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if "amount" not in errors:
            if instance.amount is None:
                errors["amount"] = [_("Required.")]
            elif instance.amount <= 0:
                errors["amount"] = [_("A payment must be more than zero.")]
        if "currency" not in errors and instance.currency not in ISO_4217:
            errors["currency"] = [
                _("%(value)r is not an ISO 4217 currency code (e.g. USD, EUR, GBP).")
                % {"value": instance.currency}
            ]
        if "received_on" not in errors and instance.received_on is None:
            errors["received_on"] = [_("Required.")]
        if recorded is None:  # as save_new_payment will; a placeholder while amount is bad
            instance.unallocated_amount = ZERO if "amount" in errors else instance.amount
        for name, before in (recorded or {}).items():
            if name not in errors and getattr(instance, name) != before:
                errors[name] = [
                    _(
                        "Payment %(id)s was recorded with %(field)s %(before)s; a recorded "
                        "payment's %(field)s never changes (record a refund or a new payment)."
                    )
                    % {"id": instance.external_id, "field": name, "before": before or "—"}
                ]
        if errors:
            raise ValidationError(errors)

    def save_record(self, instance, *, is_create):
        if is_create:
            services.save_new_payment(payment=instance, by=self.user)
        else:
            instance.save(update_fields=["received_on", "method", "remittance_reference"])


RESOURCES = {
    IntakeBatch.Kind.CUSTOMERS: CustomerResource,
    IntakeBatch.Kind.CONTACTS: ContactResource,
    IntakeBatch.Kind.PAYMENTS: PaymentResource,
}


class _Rollback(Exception):
    pass


def retry_rejection(rejection: Rejection, *, raw: dict, by=None) -> tuple[IntakeBatch | None, dict]:
    """Load one corrected customer, contact or payment row again, as a batch of its own.

    1. The row (its columns as in the file, the values as corrected) goes through the same
       resource as the import it came from: the same keys, validation and services, so
       the timeline is written as for any import. Its batch counts it as created, updated
       or unchanged: rows read = created + updated + unchanged + rejected holds for it,
       and the original batch keeps its counts as they were (a record of that load).
    2. On success the rejection becomes "retried", naming the new batch, by a conditional
       UPDATE: if someone else resolved it meanwhile, everything is rolled back.
    3. On failure nothing is written (not even the retry's batch) and the new errors are
       returned per column.
    """
    resource = RESOURCES[rejection.batch.kind]()
    columns = list(raw)
    dataset = tablib.Dataset(headers=columns)
    dataset.append([raw[column] for column in columns])
    errors: dict = {}
    try:
        with transaction.atomic():
            result = resource.import_data(
                dataset,
                dry_run=False,
                raise_errors=False,
                use_transactions=True,
                user=by,
                file_name=_("correction of row %(row)d of batch %(batch)d")
                % {"row": rejection.row_number, "batch": rejection.batch_id},
            )
            row = result.rows[0] if result.rows else None
            if row is None or result.has_errors() or OUTCOMES[row.import_type] == "rejected":
                if row is not None:
                    errors = resource.row_errors(row)
                else:
                    errors = {"row": [str(error.error) for error in result.base_errors]}
                raise _Rollback
            batch = result.intake_batch
            done = Rejection.objects.filter(pk=rejection.pk, status=Rejection.Status.OPEN).update(
                status=Rejection.Status.RETRIED,
                resolution=_("Corrected by hand and loaded (%(outcome)s) in batch %(batch)d.")
                % {"outcome": OUTCOMES[row.import_type], "batch": batch.pk},
                resolved_by=by,
                resolved_at=timezone.now(),
            )
            if done != 1:  # another user resolved it meanwhile: load nothing twice
                errors = {"row": [_("This row was resolved by someone else meanwhile.")]}
                raise _Rollback
    except _Rollback:
        return None, errors
    return batch, {}
