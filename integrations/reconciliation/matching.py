"""Matching money received to open invoices: who paid, for what, and how sure we are.

For a chunk of payments (CHUNK_SIZE at a time) the engine loads everything it needs with a
few queries (the invoices whose numbers appear in the remittance texts, and the open
invoices of the payers that quote none of their own), decides each payment in Python, and
then books the sure matches through `accounts.services.allocate_many` (which writes the
timeline and moves the invoices' status in the same transaction) and queues the others as
`MatchProposal`s.

The rules, tried in order for each payment; the first that finds something decides:

1. Invoice numbers in the remittance text or reference (`invoice_number`, 1.0 when the
   amount pays exactly those invoices, `invoice_number_amount_differs`, 0.95, otherwise).
   Only the payer's open invoices count when the payer is known; otherwise an open invoice
   with exactly that number also names the payer (if all numbers name the same one).
2. The exact amount of exactly one of the payer's open invoices (`exact_amount`, 0.9);
   several invoices with that amount make a proposal for the oldest (`exact_amount_several`).
3. Several of the payer's open invoices that add up exactly (`subset_sum`, 0.8): at most
   MAX_SUBSET_CANDIDATES oldest candidates, at most MAX_SUBSET_COMBINATIONS tried, smaller
   and older combinations first.
4. Oldest first across the payer's open invoices (`oldest_first`, 0.6).

Matches below settings.RECONCILIATION_AUTO_BOOK_CONFIDENCE wait for review. Currencies are
never mixed: only invoices in the payment's currency are candidates. Money left over after
the allocations stays unallocated on the payment: a credit on the payer's account.
"""

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.functions import Coalesce, Upper
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import bulk, services
from accounts.models import Contact, Customer, Invoice, InvoiceQuerySet, Payment

from ..models import BankLine, MatchProposal

logger = logging.getLogger(__name__)

CHUNK_SIZE = 2500  # payments per transaction: fewer commits and round trips, short locks
MAX_SUBSET_CANDIDATES = 20
MAX_SUBSET_COMBINATIONS = 50_000
MAX_SUBSET_SIZE = 6
MEET_IN_THE_MIDDLE_UP_TO = 24  # candidates; 2 x 2**12 sums at most
CENT = Decimal("0.01")

RULES = {
    "invoice_number": Decimal("1.0"),
    "invoice_number_amount_differs": Decimal("0.95"),
    "exact_amount": Decimal("0.9"),
    "subset_sum": Decimal("0.8"),
    "exact_amount_several": Decimal("0.7"),
    "oldest_first": Decimal("0.6"),
}
# Words that look like references but are not invoice or customer numbers.
TOKEN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9])?")
HAS_DIGIT = re.compile(r"[0-9]").search


def auto_book_confidence() -> Decimal:
    return Decimal(str(settings.RECONCILIATION_AUTO_BOOK_CONFIDENCE))


def tokens(text: str) -> set[str]:
    """Words that could be an invoice or customer number: they hold a digit, 3+ chars.

    Both the word as written and in capitals, since invoice numbers are matched exactly
    (the index on Invoice.number is case-sensitive) and payers retype them in any case.
    """
    found = set()
    for token in TOKEN.findall(text or ""):
        if len(token) >= 3 and HAS_DIGIT(token):
            found.add(token)
            found.add(token.upper())
    return found


def _name_key(name: str) -> str:
    return " ".join(name.split()).upper()


# --- who paid -------------------------------------------------------------------------


# A customer merged into another (accounts/merging.py) stands for the one it was merged into.
SURVIVOR = Coalesce("merged_into_id", "pk")


def identify_payers(lines: Sequence) -> list[int | None]:
    """The customer id behind each bank line, or None; conservative on purpose.

    `lines` need `counterparty_account`, `counterparty_name`, `remittance` and `currency`.
    Evidence, strongest first; the first that names exactly one customer decides:
    1. the counterparty's IBAN, when earlier payments from it were all one customer's;
    2. a customer reference (Customer.external_ref) written in the remittance text;
    3. invoice numbers in the remittance text whose open invoices all belong to one customer;
    4. the counterparty's name, when exactly one customer (or one customer's contacts)
       bears exactly that name, ignoring case and spacing.
    A few queries per call, whatever the number of lines.
    """
    payers: list[int | None] = [None] * len(lines)
    ibans = {line.counterparty_account for line in lines if line.counterparty_account}
    by_iban: dict[str, set[int]] = defaultdict(set)
    if ibans:
        rows = (
            BankLine.objects.filter(
                bulk.one_of("counterparty_account", ibans), payment__customer__isnull=False
            )
            .exclude(counterparty_account="")  # the partial index's condition, so it is used
            .order_by()
            .values_list("counterparty_account", "payment__customer_id")
            .distinct()
        )
        for iban, customer_id in rows:
            by_iban[iban].add(customer_id)
    words = [tokens(line.remittance) for line in lines]
    all_words = set().union(*words) if words else set()
    by_ref: dict[str, set[int]] = defaultdict(set)
    by_number: dict[str, set[int]] = defaultdict(set)
    if all_words:
        for ref, customer_id in (
            Customer.objects.filter(bulk.one_of("external_ref", all_words))
            .exclude(external_ref="")  # the partial index's condition, so the planner uses it
            .order_by()
            .values_list("external_ref", SURVIVOR)
        ):
            by_ref[ref].add(customer_id)
        for number, customer_id, currency in (
            Invoice.objects.filter(
                bulk.one_of("number", all_words), status__in=InvoiceQuerySet.OPEN_STATUSES
            )
            .order_by()
            .values_list("number", "customer_id", "currency")
        ):
            by_number[(number, currency)].add(customer_id)

    def only(candidates: set[int]) -> int | None:
        return next(iter(candidates)) if len(candidates) == 1 else None

    def sole(found: Iterable[set[int] | None]) -> int | None:
        """The one customer all these sets name together, or None."""
        union: set[int] = set()
        for ids in found:
            if ids:
                union |= ids
                if len(union) > 1:
                    return None
        return only(union)

    unnamed = []
    for index, line in enumerate(lines):
        payer = only(by_iban.get(line.counterparty_account, set()))
        if payer is None and by_ref:
            payer = sole(by_ref.get(w) for w in words[index])
        if payer is None and by_number:
            payer = sole(by_number.get((w, line.currency)) for w in words[index])
        if payer is None and line.counterparty_name.strip():
            unnamed.append(index)
        payers[index] = payer
    if unnamed:
        by_name = _customers_by_name({_name_key(lines[i].counterparty_name) for i in unnamed})
        for index in unnamed:
            payers[index] = only(by_name.get(_name_key(lines[index].counterparty_name), set()))
    return payers


def _customers_by_name(names: set[str]) -> dict[str, set[int]]:
    """Upper-cased name -> ids of the customers with that name or a contact of that name.

    UPPER(name) IN (...) is served by the B-tree indexes on UPPER(name) of both tables; the
    names go in slices so no statement grows without bound.
    """
    found: dict[str, set[int]] = defaultdict(set)
    names = sorted({name.upper() for name in names if len(name) >= 3})
    for start in range(0, len(names), 1000):
        part = names[start : start + 1000]
        for model, column in ((Customer, SURVIVOR), (Contact, "customer_id")):
            rows = (
                model.objects.annotate(upper_name=Upper("name"))
                .filter(upper_name__in=part)
                .order_by()
                .values_list("name", column)
            )
            for name, customer_id in rows:
                found[_name_key(name)].add(customer_id)
    return found


# --- deciding -------------------------------------------------------------------------


@dataclass(slots=True)
class OpenInvoice:
    pk: int
    customer_id: int
    number: str
    currency: str
    balance: Decimal
    due_on: object


@dataclass
class Match:
    rule: str
    confidence: Decimal
    lines: list[tuple[OpenInvoice, Decimal]]
    # The explanation's message (untranslated) and its values: only a proposal shows it,
    # so most matches never pay for translating and formatting it.
    reason: str
    values: dict

    @property
    def explanation(self) -> str:
        return _(self.reason) % self.values

    def as_json(self) -> list[dict]:
        return [{"invoice": inv.pk, "amount": f"{amount:.2f}"} for inv, amount in self.lines]


@dataclass
class Outcome:
    """What happened to each payment reconciled."""

    matched: int = 0  # booked in full
    partially_matched: int = 0  # something booked, the rest stays as a credit
    review: int = 0  # a proposal waits for finance
    unmatched: int = 0  # nothing found
    by_rule: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, other: "Outcome") -> None:
        self.matched += other.matched
        self.partially_matched += other.partially_matched
        self.review += other.review
        self.unmatched += other.unmatched
        for rule, count in other.by_rule.items():
            self.by_rule[rule] += count


def _spread(invoices: list[OpenInvoice], amount: Decimal) -> list[tuple[OpenInvoice, Decimal]]:
    """Apply `amount` oldest first, each invoice up to its balance."""
    lines, left = [], amount
    for invoice in invoices:
        if left <= 0:
            break
        take = min(invoice.balance, left)
        if take > 0:
            lines.append((invoice, take))
            left -= take
    return lines


def _subset_sum(candidates: list[OpenInvoice], amount: Decimal) -> list[OpenInvoice] | None:
    """The first combination (fewest invoices, then oldest) of 2+ invoices summing to `amount`.

    Grows combinations one invoice at a time in date order, keeping only running sums below
    the target (balances are positive) and one combination per sum, so the search stays
    small; it gives up after MAX_SUBSET_COMBINATIONS partial sums.

    Most payments that get this far (money on account) have no such combination at all,
    and proving that by the search costs the most. So first, when there are few enough
    candidates, meet in the middle: the fewest invoices for every sum of each half, then
    whether some pair reaches the target with at most MAX_SUBSET_SIZE invoices. If none
    does, the search could not find one either; otherwise it runs, unchanged.
    """
    target = int(amount * 100)
    cents = [int(invoice.balance * 100) for invoice in candidates]
    if sum(sorted(cents)[-MAX_SUBSET_SIZE:]) < target:
        return None
    if len(cents) <= MEET_IN_THE_MIDDLE_UP_TO:
        half = len(cents) // 2
        right = _fewest_per_sum(cents[half:])
        if not any(
            target - total in right and size + right[target - total] <= MAX_SUBSET_SIZE
            for total, size in _fewest_per_sum(cents[:half]).items()
        ):
            return None
    level = {c: (i,) for i, c in reversed(list(enumerate(cents))) if c < target}
    explored = len(level)
    tails = [list(enumerate(cents))[start:] for start in range(len(cents) + 1)]
    items = sorted(level.items(), key=lambda item: item[1])
    for _size in range(2, min(len(candidates), MAX_SUBSET_SIZE) + 1):
        following: dict[int, tuple[int, ...]] = {}
        for total, combo in items:
            need = target - total
            for j, c in tails[combo[-1] + 1]:
                if c < need:
                    if total + c not in following:
                        following[total + c] = (*combo, j)
                        explored += 1
                        if explored > MAX_SUBSET_COMBINATIONS:
                            return None
                elif c == need:
                    return [candidates[i] for i in (*combo, j)]
        # Filled in combination order (combinations in order, each extended in order), so
        # the next size walks them in order without sorting.
        items = list(following.items())
    return None


def _fewest_per_sum(cents: list[int]) -> dict[int, int]:
    """Every sum of up to MAX_SUBSET_SIZE of these amounts, with the fewest it takes."""
    fewest = {0: 0}
    for c in cents:
        for total, size in list(fewest.items()):
            if size < MAX_SUBSET_SIZE and fewest.get(total + c, MAX_SUBSET_SIZE + 1) > size + 1:
                fewest[total + c] = size + 1
    return fewest


def decide(
    *,
    amount: Decimal,
    currency: str,
    payer_id: int | None,
    words: set[str],
    numbered: dict[str, list[OpenInvoice]],
    open_by_customer: dict[int, list[OpenInvoice]],
) -> Match | None:
    """The best match for one payment, or None. Pure: reads only what it is given."""
    # 1. Invoice numbers.
    found = {
        invoice.pk: invoice
        for word in words
        for invoice in numbered.get(word, ())
        if invoice.currency == currency
        and invoice.balance > 0
        and (payer_id is None or invoice.customer_id == payer_id)
    }
    if found and len({invoice.customer_id for invoice in found.values()}) == 1:
        invoices = sorted(found.values(), key=lambda i: (i.due_on, i.pk))
        numbers = ", ".join(invoice.number for invoice in invoices)
        total = sum(invoice.balance for invoice in invoices)
        if total == amount:
            return Match(
                "invoice_number",
                RULES["invoice_number"],
                [(invoice, invoice.balance) for invoice in invoices],
                gettext_noop("Remittance quotes %(n)s; the amount pays exactly what is open."),
                {"n": numbers},
            )
        return Match(
            "invoice_number_amount_differs",
            RULES["invoice_number_amount_differs"],
            _spread(invoices, amount),
            gettext_noop("Remittance quotes %(n)s (open %(c)s %(t)s); paid %(c)s %(a)s."),
            {"n": numbers, "c": currency, "t": total, "a": amount},
        )
    if payer_id is None:
        return None
    candidates = [
        invoice
        for invoice in open_by_customer.get(payer_id, ())
        if invoice.currency == currency and invoice.balance > 0
    ]
    if not candidates:
        return None
    # 2. The exact amount of one invoice.
    exact = [invoice for invoice in candidates if invoice.balance == amount]
    if len(exact) == 1:
        return Match(
            "exact_amount",
            RULES["exact_amount"],
            [(exact[0], amount)],
            gettext_noop("The payer's only open invoice of %(c)s %(a)s is %(n)s."),
            {"c": currency, "a": amount, "n": exact[0].number},
        )
    if len(exact) > 1:
        return Match(
            "exact_amount_several",
            RULES["exact_amount_several"],
            [(exact[0], amount)],
            gettext_noop("%(k)d open invoices of %(c)s %(a)s; proposing the oldest, %(n)s."),
            {"k": len(exact), "c": currency, "a": amount, "n": exact[0].number},
        )
    # 3. A combination that adds up.
    subset = _subset_sum(
        [invoice for invoice in candidates if invoice.balance < amount][:MAX_SUBSET_CANDIDATES],
        amount,
    )
    if subset:
        return Match(
            "subset_sum",
            RULES["subset_sum"],
            [(invoice, invoice.balance) for invoice in subset],
            gettext_noop("%(n)s add up to exactly %(c)s %(a)s."),
            {"n": ", ".join(i.number for i in subset), "c": currency, "a": amount},
        )
    # 4. Oldest first.
    lines = _spread(candidates, amount)
    return Match(
        "oldest_first",
        RULES["oldest_first"],
        lines,
        gettext_noop("No invoice quoted or matching; applied oldest first to %(n)s."),
        {"n": ", ".join(invoice.number for invoice, _amount in lines)},
    )


# --- booking --------------------------------------------------------------------------

PROPOSAL_COLUMNS = ("payment_id", "rule", "confidence", "lines", "explanation")
OPEN_FIELDS = ("pk", "customer_id", "number", "currency", "open_balance", "due_on")


def _open_invoices(queryset) -> list[OpenInvoice]:
    return [
        OpenInvoice(pk, customer_id, number, currency, balance, due_on)
        for pk, customer_id, number, currency, balance, due_on in queryset.order_by(
            "due_on", "pk"
        ).values_list(*OPEN_FIELDS)
    ]


def _load_payers(
    payer_ids: set[int],
    invoices: dict[int, OpenInvoice],
    open_by_customer: dict[int, list[OpenInvoice]],
    loaded: set[int],
) -> None:
    """Add these payers' open invoices, oldest first, keeping one object per invoice (so
    the balances already reserved in this chunk stay reserved)."""
    payer_ids -= loaded
    if not payer_ids:
        return
    loaded |= payer_ids
    for invoice in _open_invoices(
        Invoice.objects.outstanding().filter(bulk.one_of("customer_id", payer_ids))
    ):
        invoice = invoices.setdefault(invoice.pk, invoice)
        open_by_customer[invoice.customer_id].append(invoice)


def _by_number(match: Match | None) -> bool:
    return match is not None and match.rule in ("invoice_number", "invoice_number_amount_differs")


def reconcile(payment_ids: Iterable[int], *, by=None, chunk_size: int = CHUNK_SIZE) -> Outcome:
    """Match and book (or propose) each payment; returns the counts. Safe to run again:
    payments with nothing unallocated or with a pending proposal are left alone."""
    payment_ids = list(payment_ids)
    outcome = Outcome()
    for start in range(0, len(payment_ids), chunk_size):
        outcome.add(_reconcile_chunk(payment_ids[start : start + chunk_size], by=by))
    return outcome


def _reconcile_chunk(payment_ids: list[int], *, by) -> Outcome:
    """1. Load the chunk's payments that still hold money and wait for no review.
    2. Load the open invoices quoted by number, then those of every payer that quotes none
       of its own, in two queries.
    3. Decide each payment in Python against balances kept in memory, so two payments in
       the chunk never plan to fill the same invoice twice.
    4. Book the sure matches with `allocate_many`, which locks and re-checks each balance,
       so a concurrent allocation since step 2 makes that payment's booking fail (it stays
       unapplied) instead of overdrawing anything.
    5. Queue the rest as proposals in one INSERT.
    """
    outcome = Outcome()
    # Money left is checked here, not in SQL: there the planner would read the partial
    # index of all unapplied payments (each fresh one is) and AND it with the ids.
    payments = [
        row
        for row in Payment.objects.filter(bulk.one_of("id", payment_ids), kind=Payment.Kind.PAYMENT)
        .exclude(proposals__status=MatchProposal.Status.PENDING)
        .order_by("received_on", "pk")
        .values_list("pk", "customer_id", "currency", "unallocated_amount", "remittance_reference")
        if row[3] > 0
    ]
    words = {pk: tokens(remittance) for pk, _c, _cur, _a, remittance in payments}
    all_words = set().union(*words.values()) if words else set()
    numbered: dict[str, list[OpenInvoice]] = defaultdict(list)
    invoices: dict[int, OpenInvoice] = {}
    if all_words:
        for invoice in _open_invoices(
            Invoice.objects.outstanding().filter(bulk.one_of("number", all_words))
        ):
            invoices[invoice.pk] = invoice
            numbered[invoice.number].append(invoice)
    # Only payers whose payment quotes none of their open invoices go past rule 1, so only
    # theirs are loaded (a payer whose quoted invoices another payment of the chunk fills
    # first is loaded when that happens, below).
    open_by_customer: dict[int, list[OpenInvoice]] = defaultdict(list)
    loaded: set[int] = set()
    _load_payers(
        {
            customer_id
            for pk, customer_id, currency, _a, _r in payments
            if customer_id
            and not any(
                invoice.customer_id == customer_id and invoice.currency == currency
                for word in words[pk]
                for invoice in numbered.get(word, ())
            )
        },
        invoices,
        open_by_customer,
        loaded,
    )
    threshold = auto_book_confidence()
    proposals = []
    sure: list[tuple[int, Decimal, Match]] = []
    for pk, customer_id, currency, amount, _remittance in payments:
        arguments = {
            "amount": amount,
            "currency": currency,
            "payer_id": customer_id,
            "words": words[pk],
            "numbered": numbered,
            "open_by_customer": open_by_customer,
        }
        match = decide(**arguments)
        if customer_id and customer_id not in loaded and not _by_number(match):
            _load_payers({customer_id}, invoices, open_by_customer, loaded)
            match = decide(**arguments)  # pure, so deciding again with more is safe
        if match is None or not match.lines:
            outcome.unmatched += 1
            continue
        outcome.by_rule[match.rule] += 1
        if match.confidence < threshold:
            proposals.append(
                (pk, match.rule, match.confidence, match.as_json(), match.explanation[:300])
            )
            outcome.review += 1
            continue
        for invoice, line_amount in match.lines:
            invoice.balance -= line_amount  # reserved: later payments of the chunk see it
        sure.append((pk, amount, match))
    _book_all(sure, outcome, by=by)
    bulk.insert_rows(MatchProposal, PROPOSAL_COLUMNS, proposals, returning=False)
    return outcome


def _book_all(sure: list[tuple[int, Decimal, Match]], outcome: Outcome, *, by) -> None:
    """Book the chunk's sure matches with one set-based ledger write, each under its rule.

    `allocate_many` locks and re-checks every balance, so a concurrent allocation since the
    invoices were read makes that payment's booking fail (it stays unapplied) instead of
    overdrawing anything; each match is booked whole or not at all.
    """
    if not sure:
        return
    refusals = services.allocate_many(
        [
            (pk, [(invoice.pk, amount) for invoice, amount in match.lines], match.rule)
            for pk, _a, match in sure
        ],
        by=by,
    )
    for (pk, amount, match), refusal in zip(sure, refusals, strict=True):
        if refusal:
            logger.info("payment %s not booked by %s: %s", pk, match.rule, refusal)
            for invoice, line_amount in match.lines:
                invoice.balance += line_amount
            outcome.unmatched += 1
        elif sum(line_amount for _i, line_amount in match.lines) < amount:
            outcome.partially_matched += 1
        else:
            outcome.matched += 1


# --- finance's decisions --------------------------------------------------------------


def _require(user, perm: str) -> None:
    if user is not None and not user.has_perm(perm):
        raise PermissionDenied(_("You do not have permission to do this."))


@transaction.atomic
def accept_proposal(*, proposal: MatchProposal, by) -> list:
    """Book a proposal as proposed. `allocate` re-checks every balance as it stands now;
    if one no longer allows the amount, nothing is booked and the proposal stays pending."""
    _require(by, "integrations.review_match")
    proposal = MatchProposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.status != MatchProposal.Status.PENDING:
        raise ValidationError(
            _("This proposal was already %(s)s.") % {"s": proposal.get_status_display().lower()}
        )
    allocations = []
    invoices = Invoice.objects.in_bulk([line["invoice"] for line in proposal.lines])
    for line in proposal.lines:
        invoice = invoices.get(line["invoice"])
        if invoice is None:
            raise ValidationError(_("Invoice %(id)s no longer exists.") % {"id": line["invoice"]})
        allocations.append(
            services.allocate(
                payment=proposal.payment,
                invoice=invoice,
                amount=line["amount"],
                by=by,
                rule=proposal.rule,
            )
        )
    _decide(proposal, MatchProposal.Status.ACCEPTED, by)
    return allocations


@transaction.atomic
def reject_proposal(*, proposal: MatchProposal, by) -> MatchProposal:
    """Refuse a proposal; the payment stays unapplied for allocation by hand."""
    _require(by, "integrations.review_match")
    proposal = MatchProposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.status != MatchProposal.Status.PENDING:
        raise ValidationError(
            _("This proposal was already %(s)s.") % {"s": proposal.get_status_display().lower()}
        )
    return _decide(proposal, MatchProposal.Status.REJECTED, by)


def _decide(proposal: MatchProposal, status: str, by) -> MatchProposal:
    proposal.status = status
    proposal.decided_by = by
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "decided_by", "decided_at"])
    return proposal


@transaction.atomic
def allocate_by_hand(*, payment: Payment, splits: Sequence[tuple[Invoice, Decimal]], by) -> list:
    """Split one payment across invoices as finance chose; all or nothing. A pending
    proposal for the payment is set aside (rejected) once the money is applied by hand."""
    _require(by, "accounts.add_allocation")
    if not splits:
        raise ValidationError(_("Choose at least one invoice and an amount."))
    allocations = [
        services.allocate(payment=payment, invoice=invoice, amount=amount, by=by, rule="manual")
        for invoice, amount in splits
    ]
    for proposal in MatchProposal.objects.select_for_update().filter(
        payment=payment, status=MatchProposal.Status.PENDING
    ):
        _decide(proposal, MatchProposal.Status.REJECTED, by)
    return allocations
