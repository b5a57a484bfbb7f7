"""The portal's action pages: promise, dispute, plan, preferences and a message to us.

Thin views: the session decorator (`portal.session.portal_view`) says whose portal this
is (`request.customer`, `request.contact`, None for an old customer-level link) and
switches to the customer's language; the form parses; a service of portal/actions.py
decides and writes. A refusal shows on the form, field by field; a success redirects to
the same page with a confirmation (post/redirect/get, so a reload sends nothing twice).
"""

import functools

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
    ValidationError,
)
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from accounts.money import format_money
from integrations import uploads

from . import action_forms, actions
from .session import portal_view

GET_POST = require_http_methods(["GET", "POST"])


class PortalUploadHandler(uploads.LimitedUploadHandler):
    """The upload limit of the whole request for the portal's forms: every file at its
    largest (PORTAL_UPLOAD_MAX_FILES x PORTAL_UPLOAD_MAX_BYTES), refused as it arrives.
    Each file is then measured and sniffed by `actions.check_attachments`."""

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.PORTAL_UPLOAD_MAX_BYTES * settings.PORTAL_UPLOAD_MAX_FILES

    def _refuse(self, size: int) -> None:
        if size > self.limit:
            self.refused = _(
                "The files are %(size)s together; at most %(limit)s can be sent at once."
            ) % {"size": filesizeformat(size), "limit": filesizeformat(self.limit)}


def portal_uploads(view):
    """`integrations.uploads.limit_uploads` for the portal: the bounded handler goes in
    before anything reads the body (the CSRF check does, hence csrf_exempt outside and
    csrf_protect after the handler). A refusal is in `request.upload_refusal`."""

    @functools.wraps(view)
    def limited(request, *args, **kwargs):
        handler = PortalUploadHandler(request)
        request.upload_handlers.insert(0, handler)
        request.upload_refusal = None
        if request.method == "POST":
            try:
                request.POST  # noqa: B018 (parsed here, through the handler)
            except (
                RequestDataTooBig,
                TooManyFieldsSent,
                TooManyFilesSent,
                MultiPartParserError,
            ) as exc:
                request.upload_refusal = _("The form could not be read: %(e)s") % {"e": exc}
                return view(request, *args, **kwargs)  # renders the refusal, writes nothing
            request.upload_refusal = handler.refused
        return csrf_protect(view)(request, *args, **kwargs)

    return csrf_exempt(limited)


def _refused(form, exc: ValidationError) -> None:
    """A service's refusals onto the form: under the field they name, else on the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _page(request, template: str, form, **context):
    return render(
        request,
        template,
        {
            "company_name": settings.COMPANY_NAME,
            "company_email": settings.DEFAULT_FROM_EMAIL,
            "form": form,
            "customer": request.customer,
            "contact": request.contact,
            **context,
        },
    )


@never_cache
@GET_POST
@portal_view
def promise(request):
    """Promise to pay a date and amount for chosen invoices (actions.promise_to_pay)."""
    today = timezone.localdate()
    form = action_forms.PromiseForm(request.POST or None, customer=request.customer, today=today)
    if request.method == "POST" and form.is_valid():
        try:
            made = actions.promise_to_pay(
                customer=request.customer,
                contact=request.contact,
                invoice_ids=form.cleaned_data["invoices"],
                amount=form.cleaned_data["amount"],
                promised_on=form.cleaned_data["promised_on"],
                today=today,
            )
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(
                request,
                _(
                    "Thank you. We have noted your promise to pay %(amount)s by %(date)s; "
                    "we will not send reminders for these invoices until then."
                )
                % {
                    "amount": format_money(made.amount, made.currency),
                    "date": formats.date_format(made.promised_on, "DATE_FORMAT"),
                },
            )
            return redirect("portal:promise")
    return _page(
        request, "portal/promise.html", form, promises=actions.open_promises(request.customer)
    )


@never_cache
@portal_uploads
@GET_POST
@portal_view
def dispute(request):
    """Dispute chosen invoices with a reason, a message and attachments."""
    form = action_forms.DisputeForm(
        request.POST or None, request.FILES or None, customer=request.customer
    )
    if request.method == "POST" and request.upload_refusal:
        form.is_valid()
        form.add_error(None, request.upload_refusal)
    elif request.method == "POST" and form.is_valid():
        try:
            made = actions.open_dispute(
                customer=request.customer,
                contact=request.contact,
                invoice_ids=form.cleaned_data["invoices"],
                reason=form.cleaned_data["reason"],
                message=form.cleaned_data["message"],
                attachments=form.cleaned_data["attachments"],
            )
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(
                request,
                _(
                    "Thank you. Your dispute (reference %(pk)s) has reached our team; we will "
                    "not send reminders for these invoices while we look into it."
                )
                % {"pk": made.pk},
            )
            return redirect("portal:dispute")
    return _page(
        request, "portal/dispute.html", form, disputes=actions.active_disputes(request.customer)
    )


@never_cache
@GET_POST
@portal_view
def plan(request):
    """Ask to pay chosen invoices in monthly installments (actions.ask_for_plan)."""
    today = timezone.localdate()
    form = action_forms.PlanForm(request.POST or None, customer=request.customer, today=today)
    if request.method == "POST" and form.is_valid():
        try:
            asked = actions.ask_for_plan(
                customer=request.customer,
                contact=request.contact,
                invoice_ids=form.cleaned_data["invoices"],
                installments=form.cleaned_data["installments"],
                first_due_on=form.cleaned_data["first_due_on"],
                today=today,
            )
        except ValidationError as exc:
            _refused(form, exc)
        else:
            schedule = ", ".join(
                f"{formats.date_format(row.due_on, 'SHORT_DATE_FORMAT')}: "
                f"{format_money(row.amount, asked.plan.currency)}"
                for row in asked.plan.installments.order_by("sequence")
            )
            if asked.is_accepted:
                text = _("Your payment plan is agreed: %(schedule)s.") % {"schedule": schedule}
            else:
                text = _(
                    "Your request (%(schedule)s) has gone to our team for approval because it "
                    "has %(reasons)s. We will let you know; meanwhile we send no reminders "
                    "for these invoices."
                ) % {"schedule": schedule, "reasons": ", ".join(asked.reasons)}
            messages.success(request, text)
            return redirect("portal:plan")
    return _page(request, "portal/plan.html", form, plans=actions.current_plans(request.customer))


@never_cache
@GET_POST
@portal_view
def preferences(request):
    """Preferred channel, language, e-mail, phone and opt-outs (actions.update_preferences)."""
    form = action_forms.PreferencesForm(
        request.POST or None, customer=request.customer, contact=request.contact
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            changed = actions.update_preferences(
                customer=request.customer,
                contact=request.contact,
                language=data["language"],
                preferred_channel=data.get("preferred_channel", ""),
                email=data.get("email"),
                phone=data.get("phone"),
                opted_out=data.get("opted_out", ()),
            )
        except ValidationError as exc:
            _refused(form, exc)
        else:
            if changed:
                # The next page is in the new language (portal_view follows the customer's);
                # so is this confirmation.
                with translation.override(request.customer.language):
                    messages.success(request, _("Your preferences are saved."))
            else:
                messages.info(request, _("Nothing changed."))
            return redirect("portal:preferences")
    return _page(request, "portal/preferences.html", form)


@never_cache
@portal_uploads
@GET_POST
@portal_view
def message(request):
    """A message to the collections team, with attachments: it reaches the agent as a
    reply does (integrations.inbound.receive.from_portal)."""
    form = action_forms.MessageForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and request.upload_refusal:
        form.is_valid()
        form.add_error(None, request.upload_refusal)
    elif request.method == "POST" and form.is_valid():
        files = form.cleaned_data["attachments"]
        try:
            actions.check_attachments(files)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            for upload in files:
                upload.seek(0)
            from integrations.inbound.receive import from_portal

            try:
                from_portal(
                    customer=request.customer,
                    contact=request.contact,
                    subject=form.cleaned_data["subject"],
                    text=form.cleaned_data["text"],
                    attachments=files,
                )
            except ValidationError as exc:
                _refused(form, exc)
            else:
                messages.success(
                    request,
                    _("Thank you. Your message has reached our team; we will reply soon."),
                )
                return redirect("portal:message")
    return _page(request, "portal/message.html", form)
