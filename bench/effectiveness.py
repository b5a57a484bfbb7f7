"""Benchmark: the message effectiveness report (reporting/effectiveness.py) on many notices.

Seeds a migrated PostgreSQL database with sent notices in one INSERT ... SELECT per
table (customers, invoices, notices with one invoice each, half of them in a two-variant
experiment, payments and allocations for 60% of the invoices, hard bounces, replies),
then times the report for each grouping and the variant comparison over 180 days.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/collections_bench_effect \\
        .venv/bin/python bench/effectiveness.py --notices 300000

The database must be migrated first (manage.py migrate) and its name contain "bench"
unless --any-database is given: the script deletes every notice, invoice and payment.
"""

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_mgmt.settings")
os.environ.setdefault("ALLOW_INSECURE_SECRET_KEY", "true")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from dunning.models import Step, StepVariant, Template  # noqa: E402
from reporting import effectiveness  # noqa: E402

AS_OF = dt.date(2026, 11, 23)
DAYS = 180

SEED_SQL = """
INSERT INTO accounts_customer (name, source, external_ref, kind, segment, industry, country,
    timezone, language, currency, status, dunning_pause_reason, do_not_contact,
    cease_communication, is_in_dispute, is_in_payment_plan, is_bankrupt, created_at,
    updated_at, risk_band)
SELECT 'Bench ' || g, 'bench', 'B' || g, 'business',
       (ARRAY['standard','strategic','high_risk'])[1 + g %% 3], '', 'US', 'UTC', 'en', 'USD',
       'active', '', false, false, false, false, false, now(), now(),
       (ARRAY['low','medium','high',''])[1 + g %% 4]
FROM generate_series(1, %(customers)s) g;

CREATE TEMP TABLE bench_customers AS
SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM accounts_customer WHERE source = 'bench';

INSERT INTO accounts_invoice (number, source, external_id, issued_on, due_on, currency, amount,
    open_balance, status, reference, pay_link, created_at, updated_at, customer_id,
    dunning_pause_reason)
SELECT 'BN-' || g, 'bench', '', %(as_of)s::date - (g %% %(days)s) - 37,
       %(as_of)s::date - (g %% %(days)s) - 7,
       CASE WHEN g %% 10 = 0 THEN 'EUR' ELSE 'USD' END, 100 + g %% 900, 100 + g %% 900, 'open',
       '', '', now(), now(), c.id, ''
FROM generate_series(1, %(notices)s) g JOIN bench_customers c ON c.n = g %% %(customers)s;

CREATE TEMP TABLE bench_invoices AS
SELECT i.id, i.customer_id, i.amount, i.currency, i.due_on + 7 AS sent_on,
       row_number() OVER (ORDER BY i.id) AS g
FROM accounts_invoice i WHERE source = 'bench';

INSERT INTO dunning_notice (channel, status, planned_on, reason, subject, body_text, body_html,
    recipient, provider_message_id, attempts, created_at, updated_at, customer_id, step_id,
    document, edited_invoices, claim_token, sent_at, delivered_at, variant_id,
    variant_drawn_by)
SELECT 'email', CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'delivered' END, sent_on, '', 'x',
       'x', '', 'ap@example.com', 'bench-' || g, 1, now(), now(), customer_id, %(step)s, '',
       '[]', '', sent_on + time '10:00', sent_on + time '10:05',
       CASE WHEN g %% 2 = 0 THEN (ARRAY[%(variant_a)s, %(variant_b)s])[1 + (g / 2) %% 2] END,
       CASE WHEN g %% 2 = 0 THEN 'weights' ELSE '' END
FROM bench_invoices;

INSERT INTO dunning_noticeinvoice (invoice_id, notice_id, step_id)
SELECT i.id, n.id, n.step_id FROM bench_invoices i
JOIN dunning_notice n ON n.provider_message_id = 'bench-' || i.g;

INSERT INTO dunning_emailevent (event_id, kind, is_permanent, message_id, email, reason,
    notice_id, opted_out, payload, received_at)
SELECT 'bench-' || n.id, 'bounce', true, '', '', '', n.id, 0, '{}', n.sent_at + interval '1 hour'
FROM dunning_notice n WHERE n.status = 'failed' AND n.provider_message_id LIKE 'bench-%%';

INSERT INTO accounts_activity (customer_id, kind, channel, outcome, text, details, occurred_at)
SELECT customer_id, 'reply', 'sms', '', 'reply', '{}', sent_on + time '15:00'
FROM bench_invoices WHERE g %% 33 = 0;

INSERT INTO accounts_payment (kind, amount, currency, unallocated_amount, received_on, method,
    remittance_reference, source, external_id, created_at, refunded_amount, payer_account,
    payer_name, customer_id)
SELECT 'payment', amount, currency, 0, sent_on + (g %% 20)::int, 'bank_transfer', 'BN-' || g,
       'bench', 'BP-' || g, now(), 0, '', '', customer_id
FROM bench_invoices WHERE g %% 5 < 3;

INSERT INTO accounts_allocation (amount, allocated_on, rule, created_at, invoice_id, payment_id,
    reason, seq)
SELECT p.amount, p.received_on, 'bench', now(), i.id, p.id, '', 1
FROM accounts_payment p JOIN bench_invoices i ON p.external_id = 'BP-' || i.g
WHERE p.source = 'bench';

UPDATE accounts_invoice i SET open_balance = 0, status = 'paid'
FROM accounts_allocation a WHERE a.invoice_id = i.id AND a.rule = 'bench';
"""


def seed(notices: int) -> Step:
    step = Step.objects.get(policy__name="Standard", offset_days=7, channel="email")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE dunning_emailevent, dunning_noticeinvoice, dunning_notice, "
            "accounts_allocation, accounts_payment, accounts_activity, accounts_invoice "
            "RESTART IDENTITY CASCADE"
        )
        StepVariant.objects.filter(step=step).delete()
        variants = [
            StepVariant.objects.create(
                step=step,
                label=label,
                template=Template.objects.get_or_create(
                    name=f"Bench variant {label}",
                    language="en",
                    defaults={"channel": "email", "subject": "x", "body_text": "x"},
                )[0],
            )
            for label in ("A", "B")
        ]
        cursor.execute(
            SEED_SQL,
            {
                "customers": max(notices // 5, 1),
                "notices": notices,
                "days": DAYS,
                "as_of": AS_OF,
                "step": step.pk,
                "variant_a": variants[0].pk,
                "variant_b": variants[1].pk,
            },
        )
        cursor.execute("ANALYZE")
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=300_000)
    parser.add_argument("--reuse", action="store_true", help="time the data already seeded")
    parser.add_argument("--any-database", action="store_true")
    args = parser.parse_args()
    name = connection.settings_dict["NAME"]
    if "bench" not in name and not args.any_database:
        sys.exit(f"refusing to wipe {name}: its name has no 'bench' (or pass --any-database)")
    if not args.reuse:
        started = time.perf_counter()
        seed(args.notices)
        print(f"seeded {args.notices:,} notices in {time.perf_counter() - started:.1f} s")
    report = effectiveness.Report(
        sent_from=AS_OF - dt.timedelta(days=DAYS), sent_until=AS_OF, as_of=AS_OF
    )
    print("| grouping | rows | seconds |\n|---|---|---|")
    for group_by in [(), ("step",), ("template",), ("channel",), ("segment", "risk_band")]:
        started = time.perf_counter()
        rows = effectiveness.rows(effectiveness.Report(**{**report.__dict__, "group_by": group_by}))
        label = " + ".join(group_by) or "none"
        print(f"| {label} | {len(rows)} | {time.perf_counter() - started:.2f} |")
    started = time.perf_counter()
    experiments = effectiveness.compare_variants(report)
    print(f"| variant comparison | {len(experiments)} | {time.perf_counter() - started:.2f} |")


if __name__ == "__main__":
    main()
