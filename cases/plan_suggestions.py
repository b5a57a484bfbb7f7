"""Payment-plan suggestions: when a customer owes more than they usually pay and the
predictions say it will not be paid on time, a plan sized to what they usually pay.

The rule, per currency (amounts of two currencies are never added or compared):

1. The balance: the open balance of the customer's invoices a plan may cover (open or
   partially paid, cases.plans.PLANNABLE; not disputed, not already in a proposed or
   active plan). Customers who are not active, bankrupt or under a cease-communication
   request get no suggestion.
2. The history: the customer's payments in that currency received in the
   PLAN_SUGGESTION_HISTORY_DAYS (365) before `as_of`, summed per calendar month. The
   usual monthly payment is the median of those monthly totals. Fewer than
   PLAN_SUGGESTION_MIN_PAYMENTS (3) payments: too little to size a plan on, no suggestion.
3. Large: the balance is more than PLAN_SUGGESTION_BALANCE_FACTOR (2) times the usual
   monthly payment AND more than the largest single payment in the window: the customer
   has never paid that much at once.
4. Not on time: the invoices predicted late (probability at or above
   PREDICTED_LATE_THRESHOLD) hold at least PLAN_SUGGESTION_LATE_SHARE (0.5) of the
   balance. An invoice not scored counts as not late.
5. The plan: monthly installments of the usual monthly payment rounded down to two
   significant figures (1,234.56 -> 1,200), the last taking the remainder; the first due
   PLAN_SUGGESTION_FIRST_DUE_DAYS (7) after `as_of`. More than
   PLAN_SUGGESTION_MAX_INSTALLMENTS (12) needed: the installment grows (rounded up to two
   significant figures) so the plan fits in that many months, and the suggestion says so.
   The installments add up to exactly the balance (propose_plan's rule). A plan above
   PAYMENT_PLAN_APPROVAL_THRESHOLD waits for a manager's approval once proposed
   (cases.plans.propose_plan decides; the suggestion only says so).

Reads only: the agent accepts a suggestion through cases.plans.propose_plan.
"""

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext as _

from accounts.models import Customer, Invoice, Payment
from accounts.money import format_money

from . import plans
from .models import PaymentPlan
from .predicted import late_threshold


@dataclass(frozen=True)
class PlanSuggestion:
    """A plan to offer a customer in one currency, and why (plain words, for the agent)."""

    currency: str
    balance: Decimal  # the open balance the plan covers
    late_amount: Decimal  # of which predicted late
    usual_monthly_payment: Decimal  # median monthly total over the history window
    largest_payment: Decimal
    installment_amount: Decimal  # every installment but the last, which takes the rest
    installments: list[tuple[dt.date, Decimal]]
    invoice_ids: list[int]
    needs_approval: bool
    is_stretched: bool  # the installment is above the usual payment to fit the months
    reasons: list[str] = field(default_factory=list)

    @property
    def late_share(self) -> Decimal:
        return self.late_amount / self.balance

    @property
    def key(self) -> str:
        """What the one-click form posts back: a changed ledger since the page was shown
        (a payment, a new invoice, a rescoring) gives another key, and nothing is made."""
        ids = ",".join(str(pk) for pk in self.invoice_ids)
        rows = ",".join(f"{d.isoformat()}={a}" for d, a in self.installments)
        return f"{self.currency}|{self.balance}|{ids}|{rows}"


def _two_figures(amount: Decimal, rounding) -> Decimal:
    """Rounded to two significant figures of its whole units (at least to the unit)."""
    whole = int(amount.to_integral_value(rounding=ROUND_FLOOR))
    step = Decimal(10) ** max(len(str(max(whole, 1))) - 2, 0)
    return ((amount / step).to_integral_value(rounding=rounding) * step).quantize(Decimal("0.01"))


def _installments(
    *, balance: Decimal, usual: Decimal, first_due_on: dt.date
) -> tuple[Decimal, list[tuple[dt.date, Decimal]], bool]:
    most = int(settings.PLAN_SUGGESTION_MAX_INSTALLMENTS)
    amount = _two_figures(usual, ROUND_FLOOR)
    is_stretched = False
    if amount <= 0 or math.ceil(balance / amount) > most:
        amount = _two_figures(balance / most, ROUND_CEILING)
        is_stretched = True
    count = math.ceil(balance / amount)
    schedule = plans.monthly_installments(total=balance, count=count, first_due_on=first_due_on)
    dates = [due_on for due_on, _even_share in schedule]
    amounts = [amount] * (count - 1) + [balance - amount * (count - 1)]
    return amount, list(zip(dates, amounts, strict=True)), is_stretched


def _history(
    customer: Customer, *, currency: str, as_of: dt.date
) -> tuple[list[Decimal], int, Decimal]:
    """Monthly payment totals, the number of payments and the largest one, in the window."""
    since = as_of - dt.timedelta(days=int(settings.PLAN_SUGGESTION_HISTORY_DAYS))
    payments = Payment.objects.filter(
        customer=customer,
        kind=Payment.Kind.PAYMENT,
        currency=currency,
        amount__gt=0,
        received_on__gt=since,
        received_on__lte=as_of,
    )
    monthly = list(
        payments.annotate(month=TruncMonth("received_on"))
        .values("month")
        .annotate(total=Sum("amount"))
        .order_by("month")
        .values_list("total", flat=True)
    )
    summary = payments.aggregate(count=Count("id"), largest=Max("amount"))
    return monthly, summary["count"], summary["largest"] or Decimal("0.00")


def suggest_plans(customer: Customer, *, as_of: dt.date) -> list[PlanSuggestion]:
    """Every currency in which the customer should be offered a plan (see the module)."""
    if (
        customer.status != Customer.Status.ACTIVE
        or customer.is_bankrupt
        or customer.cease_communication
    ):
        return []
    threshold = late_threshold()
    in_plan = PaymentPlan.invoices.through.objects.filter(
        paymentplan__status__in=PaymentPlan.HOLDING_STATUSES
    ).values("invoice_id")
    plannable = Invoice.objects.filter(customer=customer, status__in=plans.PLANNABLE).exclude(
        pk__in=in_plan
    )
    balances = (
        plannable.values("currency")
        .annotate(
            balance=Sum("open_balance"),
            late=Sum("open_balance", filter=Q(prediction__probability_late__gte=threshold)),
        )
        .order_by("-balance", "currency")
    )
    suggestions = []
    for row in balances:  # one row per currency
        suggestion = _suggest(
            customer,
            currency=row["currency"],
            balance=row["balance"] or Decimal("0.00"),
            late=row["late"] or Decimal("0.00"),
            invoices=plannable,
            as_of=as_of,
        )
        if suggestion is not None:
            suggestions.append(suggestion)
    return suggestions


def suggest_plan(customer: Customer, *, as_of: dt.date, currency: str | None = None):
    """The plan to offer the customer in `currency` (default: the currency with the
    largest balance that qualifies), or None."""
    for suggestion in suggest_plans(customer, as_of=as_of):
        if currency is None or suggestion.currency == currency:
            return suggestion
    return None


def _suggest(customer, *, currency, balance, late, invoices, as_of) -> PlanSuggestion | None:
    if balance <= 0:
        return None
    monthly, count, largest = _history(customer, currency=currency, as_of=as_of)
    if count < int(settings.PLAN_SUGGESTION_MIN_PAYMENTS):
        return None
    usual = Decimal(statistics.median(monthly)).quantize(Decimal("0.01"))
    factor = Decimal(str(settings.PLAN_SUGGESTION_BALANCE_FACTOR))
    if balance <= factor * usual or balance <= largest:
        return None
    share = Decimal(str(settings.PLAN_SUGGESTION_LATE_SHARE))
    if late < share * balance:
        return None
    first_due_on = as_of + dt.timedelta(days=int(settings.PLAN_SUGGESTION_FIRST_DUE_DAYS))
    amount, installments, is_stretched = _installments(
        balance=balance, usual=usual, first_due_on=first_due_on
    )
    needs_approval = balance > plans.approval_threshold()
    reasons = [
        _(
            "Open balance %(balance)s is more than %(factor)s times the usual monthly "
            "payment (%(usual)s) and more than the largest payment (%(largest)s)."
        )
        % {
            "balance": format_money(balance, currency),
            "factor": factor.normalize(),
            "usual": format_money(usual, currency),
            "largest": format_money(largest, currency),
        },
        _("%(late)s of it (%(share)s%%) is predicted to be paid late.")
        % {
            "late": format_money(late, currency),
            "share": (late * 100 / balance).quantize(Decimal("1")),
        },
    ]
    if is_stretched:
        reasons.append(
            _(
                "The installments are above the usual monthly payment so that the plan ends "
                "within %(n)d months."
            )
            % {"n": len(installments)}
        )
    if needs_approval:
        reasons.append(
            _("Above %(limit)s: a manager approves the plan once it is proposed.")
            % {"limit": format_money(plans.approval_threshold(), currency)}
        )
    return PlanSuggestion(
        currency=currency,
        balance=balance,
        late_amount=late,
        usual_monthly_payment=usual,
        largest_payment=largest,
        installment_amount=amount,
        installments=installments,
        invoice_ids=list(
            invoices.filter(currency=currency).order_by("due_on", "id").values_list("pk", flat=True)
        ),
        needs_approval=needs_approval,
        is_stretched=is_stretched,
        reasons=reasons,
    )
