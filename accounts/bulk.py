"""Set-based writes for the ledger's bulk paths: COPY inserts and UPDATE ... FROM unnest.

The reconciliation, the intake pipeline, the nightly runs and the timeline's bulk entries
write through these two functions; `one_of` keeps their lookups to one short statement.
They check nothing about money: the callers' services do, with the database's CHECK
constraints behind them.
"""

import functools
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from django.db import connection
from django.db.models import F, Lookup, Q
from django.utils import timezone


class _AnyOf(Lookup):
    """`column = ANY(%s)` with the values as one array parameter."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]


def one_of(field: str, values: Iterable) -> Q | Lookup:
    """A filter for `field IN values` that stays one short statement however many values.

    On PostgreSQL, `field = ANY(array)`: Django's IN writes one placeholder per value,
    and the driver parses thousands of them in Python on every query. Elsewhere, `__in`.
    """
    values = list(values)
    if connection.vendor != "postgresql" or not values:
        return Q(**{f"{field}__in": values})
    return _AnyOf(F(field), values)


def insert_rows(
    model, columns: Sequence[str], rows: Iterable[tuple], *, returning: bool = True
) -> list[tuple]:
    """Insert plain rows in one pass, for the set-based writers; returns what was written.

    `columns` names model fields by attname (`customer_id`); each row holds their values
    in that order, money as Decimal (a float is refused), JSON as dicts and lists,
    datetimes aware (or already as ISO text). The fields not named take their default, as
    in `bulk_create` (auto_now and auto_now_add: one moment for the batch). Returns each
    row as stored, with its new id, in the order of `model._meta.concrete_fields` (ready
    for `model.from_db`).

    On PostgreSQL, one statement reserves the ids from the table's sequence (nextval over
    generate_series, so a concurrent writer never gets the same ones) and COPY ... FROM
    STDIN writes the rows: no model instances, no parameter lists. Values psycopg dumps
    slowly or not as we want are turned into COPY text first: money (refusing floats),
    JSON, and datetimes (psycopg dumps a datetime about five times slower than a str).
    Elsewhere, bulk_create.

    With `returning=False` (rows whose ids the caller does not need, or reads back by a
    natural key) no ids are reserved, nothing is returned, and `rows` may be any iterable:
    it is streamed into COPY as it comes, in constant memory, with the defaults encoded
    once. A refused value then aborts the COPY, and with it the transaction.
    """
    meta = model._meta
    fields = {f.attname: f for f in meta.concrete_fields if not f.primary_key}
    unknown = set(columns) - set(fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    columns, rows = _with_lookup_hashes(fields, columns, rows)
    now = timezone.now()
    named = [fields[name] for name in columns]
    named_set = set(columns)
    # The fields not named, after the named ones: a function making each row's default.
    rest = [f for name, f in fields.items() if name not in named_set]
    defaults = []
    for f in rest:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            defaults.append(itertools.repeat(now).__next__)
        elif f.has_default() and callable(f.default):
            defaults.append(f.default)
        else:
            defaults.append(itertools.repeat(f.get_default()).__next__)
    if connection.vendor != "postgresql":
        return _bulk_create_rows(model, named, rest, defaults, rows, returning)
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    # The defaults as COPY text, made once: every row takes the same.
    constants = tuple(
        _encode(_copy_encoder(f), make()) for f, make in zip(rest, defaults, strict=True)
    )
    special = [(i, encode) for i, f in enumerate(named) if (encode := _copy_encoder(f))]

    def encoded(row):
        if not special:
            return row
        row = list(row)
        for i, encode in special:
            if row[i] is not None:
                row[i] = encode(row[i])
        return row

    if not returning:
        names = ", ".join(quote(f.column) for f in (*named, *rest))
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            write_row = copy.write_row
            for row in rows:
                write_row((*encoded(row), *constants))
        return []
    rows = list(rows)
    if not rows:
        return []
    order = [meta.pk, *named, *rest]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        # Encoded before COPY starts, so a refused value leaves the transaction usable.
        lines = [(pk, *encoded(row), *constants) for pk, row in zip(ids, rows, strict=True)]
        names = ", ".join(quote(f.column) for f in order)
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            write_row = copy.write_row
            for line in lines:
                write_row(line)
    # As stored, in the model's field order. A callable default is made for each row, so
    # rows never share a mutable value (a JSON dict).
    position = {f.attname: i for i, f in enumerate(order)}
    stored = operator.itemgetter(*(position[f.attname] for f in meta.concrete_fields))
    if any(f.has_default() and callable(f.default) for f in rest):
        return [
            stored((pk, *row, *(make() for make in defaults)))
            for pk, row in zip(ids, rows, strict=True)
        ]
    made = tuple(make() for make in defaults)
    return [stored((pk, *row, *made)) for pk, row in zip(ids, rows, strict=True)]


def _bulk_create_rows(model, named, rest, defaults, rows, returning) -> list[tuple]:
    """insert_rows off PostgreSQL: model instances and bulk_create, the same refusals."""
    money = [i for i, f in enumerate(named) if _copy_encoder(f) is _decimal_text]
    objs = []
    for row in rows:
        for i in money:
            _decimal_text(row[i])  # the same refusal of floats as COPY's
        values = {f.attname: value for f, value in zip(named, row, strict=True)}
        values.update((f.attname, make()) for f, make in zip(rest, defaults, strict=True))
        objs.append(model(**values))
    model.objects.bulk_create(objs, batch_size=1000)
    if not returning:
        return []
    return [tuple(getattr(obj, f.attname) for f in model._meta.concrete_fields) for obj in objs]


def _with_lookup_hashes(fields: dict, columns: Sequence[str], rows: Iterable[tuple]):
    """The columns and rows with the keyed hashes (accounts/crypto.py) of any encrypted
    column named, so a COPY of contacts stays findable by e-mail and phone."""
    derived = [
        (f, columns.index(f.source))
        for f in fields.values()
        if hasattr(f, "derive") and f.source in columns and f.attname not in columns
    ]
    if not derived:
        return columns, rows
    more = tuple(f.attname for f, _position in derived)
    return (*columns, *more), (
        (*row, *(f.derive(row[position]) for f, position in derived)) for row in rows
    )


def _copy_encoder(field) -> Callable | None:
    """How a value of this field becomes COPY text, where psycopg's own dumper won't do
    (or is slow): JSON, money (refusing floats), datetimes, encrypted personal fields."""
    if getattr(field, "is_encrypted", False):
        return field.get_prep_value
    internal_type = field.get_internal_type()
    if internal_type == "JSONField":
        return functools.partial(json.dumps, cls=field.encoder)
    if internal_type == "DecimalField":
        return _decimal_text
    if internal_type == "DateTimeField":
        return _datetime_text
    return None


def _encode(encode: Callable | None, value):
    return value if encode is None or value is None else encode(value)


def _decimal_text(value) -> Decimal | str | None:
    """Money as COPY takes it: a Decimal as it is (psycopg writes it exactly), anything
    else through Decimal; a float never (it would be written with its binary error)."""
    if value is None or type(value) is Decimal:
        return value
    if isinstance(value, float):
        raise TypeError("money is Decimal, never float")
    return str(Decimal(value))


@functools.lru_cache(maxsize=256)  # a batch's rows mostly carry the same moment
def _datetime_text(value) -> str:
    return value if isinstance(value, str) else value.isoformat()


def write_rows(model, objs: list, fields: list[str]) -> None:
    """Write these fields of many locked rows in one statement.

    `objs` are model instances or any objects with `pk` and the fields' attnames.
    On PostgreSQL, UPDATE ... FROM unnest(one array per column) joins the new values by
    id: linear (bulk_update's CASE WHEN id = ... per row grows quadratically with the
    batch), and one short statement whatever the number of rows, so the driver has no
    thousands of placeholders to parse. Elsewhere, bulk_update.
    """
    if not objs:
        return
    columns = [model._meta.get_field(name) for name in fields]
    # An encrypted column written here takes its keyed hash along (accounts/crypto.py).
    hashes = [
        (f, model._meta.get_field(f.source))
        for f in model._meta.concrete_fields
        if hasattr(f, "derive") and f.source in fields and f.attname not in fields
    ]
    if hashes:
        objs = [_HashedRow(obj, columns, hashes) for obj in objs]
        columns = [*columns, *(f for f, _source in hashes)]
        fields = [*fields, *(f.name for f, _source in hashes)]
    if connection.vendor != "postgresql":
        instances = [
            model(pk=obj.pk, **{f.attname: getattr(obj, f.attname) for f in columns})
            for obj in objs
        ]
        model.objects.bulk_update(instances, fields, batch_size=1000)
        return
    table = model._meta.db_table
    quote = connection.ops.quote_name
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in columns)
    names = ", ".join(quote(field.column) for field in columns)
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns)
    params = [[obj.pk for obj in objs]]
    params.extend(
        [_db_value(field, getattr(obj, field.attname)) for obj in objs] for field in columns
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(table)} AS t SET {assignments} "  # noqa: S608
            f"FROM unnest(%s::bigint[], {arrays}) AS v(id, {names}) WHERE t.id = v.id",
            params,
        )


def _db_value(field, value):
    return field.get_prep_value(value) if getattr(field, "is_encrypted", False) else value


class _HashedRow:
    """A row for `write_rows` with its keyed hashes worked out from its plaintext."""

    def __init__(self, obj, columns, hashes):
        self.pk = obj.pk
        for field in columns:
            setattr(self, field.attname, getattr(obj, field.attname))
        for field, source in hashes:
            setattr(self, field.attname, field.derive(getattr(obj, source.attname)))
