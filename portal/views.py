"""The debtor portal's pages, and the statement page (/statement/<token>/) of older messages.

Signing in: a link from a message (portal/l/<token>/), or an e-mail address that gets a
new link and a one-time code (portal/ then portal/code/). Once in, every page shows the
one customer the contact belongs to (portal/session.py)."""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import portal_links
from accounts.models import InvoiceQuerySet
from accounts.statement_links import LinkExpired, LinkInvalid, customer_for_token
from staff.lockout import client_ip

from . import access, documents, pages, payments, session, statement, tasks
from .forms import CodeForm, PayForm, PeriodForm, SignInForm
from .session import portal_view, public_view


def _over_the_limit(request) -> bool:
    """One more request from this client address this minute; True past the limit.

    Counted before the token is read, so guessing tokens costs the same as reading pages
    (and a signature cannot be guessed anyway). The counter lives in the cache (Redis in
    production: shared by every web node), one key per address and minute.
    """
    count = session.count(f"portal:statement:{client_ip(request)}", window=60)
    return count > settings.STATEMENT_PAGE_REQUESTS_PER_MINUTE


@never_cache
@require_GET
def statement_page(request, token: str):
    """The open invoices and balance per currency of the one customer the token names,
    with how to pay: an invoice's own pay link where it has one, and bank transfer
    instructions with the reference the reconciliation matcher books by.

    1. Too many requests from one address: 429, whatever the token.
    2. A forged, altered or unknown token: 404, the same answer as any wrong address.
    3. An expired one: 410 and a page saying how to reach us for a new link.
    """
    if _over_the_limit(request):
        return session.too_many()
    try:
        customer = customer_for_token(token)
    except LinkInvalid as exc:
        raise Http404 from exc
    except LinkExpired:
        return render(request, "portal/expired.html", _company(), status=410)
    with translation.override(customer.language or settings.LANGUAGE_CODE):
        content = statement.build(customer, as_of=timezone.localdate())
        response = render(
            request,
            "portal/statement.html",
            {**_company(), "statement": content, "customer": customer},
        )
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to pay pages
    return response


def _company() -> dict:
    return {"company_name": settings.COMPANY_NAME, "company_email": settings.DEFAULT_FROM_EMAIL}


# ---------------------------------------------------------------------------------------
# Signing in


EMAIL_SESSION_KEY = "portal_email"


@public_view
def open_link(request, token: str):
    """A link from a message: log the contact in, then go to the home page (so the token
    leaves the address bar and the history)."""
    try:
        contact = portal_links.contact_for_token(token)
    except portal_links.LinkInvalid as exc:
        raise Http404 from exc
    except portal_links.LinkExpired:
        return render(
            request, "portal/link_expired.html", {**_company(), "form": SignInForm()}, status=410
        )
    if not _may_use_portal(contact.customer):
        raise Http404
    session.login(request, contact, via="link")
    return redirect("portal:home")


@public_view
def sign_in(request):
    """Ask for access by e-mail address. The answer is the same whether or not we know the
    address (portal/access.py sends in the background)."""
    if session.current_contact(request) is not None and request.method == "GET":
        return redirect("portal:home")
    form = SignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        contact_ids = access.request_access(email)
        if contact_ids:
            transaction.on_commit(lambda: tasks.send_access.delay(contact_ids))
        request.session[EMAIL_SESSION_KEY] = email
        return redirect("portal:code")
    return render(request, "portal/login.html", {**_company(), "form": form})


@public_view
def enter_code(request):
    email = request.session.get(EMAIL_SESSION_KEY)
    if not email:
        return redirect("portal:login")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if session.count(f"portal:code:{client_ip(request)}", window=3600) > 30:
            return session.too_many()
        contact = access.check_code(email, form.cleaned_data["code"])
        if contact is not None and _may_use_portal(contact.customer):
            request.session.pop(EMAIL_SESSION_KEY, None)
            session.login(request, contact, via="code")
            return redirect("portal:home")
        form.add_error("code", _("That code is wrong or has expired. Ask for a new one."))
    return render(request, "portal/code.html", {**_company(), "form": form, "email": email})


@require_POST
@public_view
def sign_out(request):
    session.logout(request)
    return redirect("portal:login")


def _may_use_portal(customer) -> bool:
    return customer.erased_at is None and customer.status != customer.Status.MERGED


# ---------------------------------------------------------------------------------------
# The customer's pages


def _page(request, template: str, context: dict, status: int = 200):
    return render(
        request,
        template,
        {**_company(), "customer": request.customer, "contact": request.contact, **context},
        status=status,
    )


@require_GET
@portal_view
def home(request):
    today = timezone.localdate()
    customer = request.customer
    return _page(
        request,
        "portal/home.html",
        {
            "today": today,
            "balances": pages.balances(customer, today=today),
            "invoices": pages.open_invoices(customer, limit=10),
            **pages.open_cases(customer),
        },
    )


@require_GET
@portal_view
def invoices(request):
    which = "paid" if request.GET.get("show") == "paid" else "open"
    page = pages.invoice_page(request.customer, which=which, page=request.GET.get("page"))
    return _page(
        request,
        "portal/invoices.html",
        {"page": page, "which": which, "today": timezone.localdate()},
    )


@require_GET
@portal_view
def invoice(request, invoice_id: int):
    found = pages.invoice_for(request.customer, invoice_id)
    if found is None:
        raise Http404
    return _page(
        request,
        "portal/invoice.html",
        {
            "invoice": found,
            "allocations": pages.payments_on(found),
            "today": timezone.localdate(),
            "is_open": found.status in InvoiceQuerySet.OPEN_STATUSES,
        },
    )


@require_GET
@portal_view
def invoice_pdf(request, invoice_id: int):
    """The uploaded original where there is one, else a copy made from the ledger."""
    found = pages.invoice_for(request.customer, invoice_id)
    if found is None:
        raise Http404
    filename = f"invoice-{slugify(found.number) or found.pk}.pdf"
    if found.original:
        try:
            handle = found.original.open("rb")
        except OSError as exc:  # listed but missing from storage
            raise Http404 from exc
        return FileResponse(
            handle, as_attachment=True, filename=filename, content_type="application/pdf"
        )
    pdf = documents.invoice_copy(found, allocations=pages.payments_on(found))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@portal_view
def period_statement(request):
    today = timezone.localdate()
    data = request.GET if "start" in request.GET else None
    form = PeriodForm(
        data, initial={"start": today.replace(day=1) - dt.timedelta(days=90), "end": today}
    )
    statement = None
    if form.is_bound and form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    elif not form.is_bound:
        start, end = form.initial["start"], form.initial["end"]
    else:
        start = end = None
    if start and end:
        statement = pages.period_statement(request.customer, start=start, end=end)
        if request.GET.get("format") == "pdf":
            pdf = documents.statement_pdf(request.customer, statement)
            response = HttpResponse(pdf, content_type="application/pdf")
            response["Content-Disposition"] = (
                f'attachment; filename="statement-{start.isoformat()}-{end.isoformat()}.pdf"'
            )
            return response
    return _page(request, "portal/period_statement.html", {"form": form, "statement": statement})


@portal_view
def pay(request):
    """Pay one, several or part of the open invoices: Stripe Checkout when it is set up
    (one invoice at a time, the way the Stripe webhook books payments), otherwise bank
    transfer instructions with the reference the reconciliation matches."""
    customer = request.customer
    if request.method == "POST":
        form = PayForm(request.POST, customer=customer)
    else:
        wanted = [value for value in request.GET.getlist("invoice") if value.isdigit()]
        form = PayForm(customer=customer, initial={"invoices": wanted} if wanted else None)
    online = bool(settings.STRIPE_API_KEY)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        chosen = list(data["invoices"])
        if online and request.POST.get("method") == "card":
            if len(chosen) != 1:
                form.add_error("invoices", _("Online, pay one invoice at a time."))
            else:
                url = payments.checkout(request, chosen[0], data)
                if url:
                    return redirect(url)
                form.add_error(None, _("Online payment is not available just now."))
        else:
            plan = payments.bank_transfer(request, chosen, data)
            return _page(request, "portal/pay_transfer.html", {"transfer": plan})
    return _page(
        request,
        "portal/pay.html",
        {"form": form, "online": online, "bank": statement.bank_details()},
    )
