"""The console's one decision flow: approve, reject, resolve, reverse, cancel, skip...

A decision is a person's call on a row that a service carries out (approve a payment plan,
resolve a dispute, reject a notice). Every workflow declares its decisions on its
ModelAdmin (`DecisionAdmin.decisions`) and this module does the rest, the same way for
all of them:

1. the permission check (the decision's permission, then the service's own checks);
2. the form: a reason (`ReasonForm`), the workflow's own, or none (a confirmation);
3. the service call, one row at a time, each in the service's own transaction; its
   refusals (ValidationError, PermissionDenied) go onto the form for one row, or into
   a message per refused row for a selection;
4. the message, and back to the row's page or the list.

Each decision gets a page per row (`<id>/<name>/`, URL name `<app>_<model>_<name>`, a
button on the row's page when `applies(row)`) and an entry in the list's action menu
(`bulk=True`), on the rows it applies to.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class ReasonForm(forms.Form):
    """Why: kept on the timeline with the decision."""

    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))


class ConfirmForm(forms.Form):
    """A decision that needs no more than a click on its button."""


@dataclass(frozen=True)
class Decision:
    name: str  # the URL (<id>/<name>/), its name's suffix, and the list action's name
    label: str  # the button, the list action and the page's title
    perm: str  # "app_label.codename"
    decide: Callable  # decide(row, by=user, **form.cleaned_data): the service call
    form: type[forms.Form] = ReasonForm
    applies: Callable = lambda row: True  # the row's state allows it
    bulk: bool = True  # also in the list's action menu
    page: bool = True  # a page and a button per row (False: the list's action menu only)
    action: str = ""  # the list action's name, if not `name`
    bulk_form: type[forms.Form] | None = None  # for a selection, if not `form`
    check_many: Callable | None = None  # check_many(rows, data): refuse a whole selection
    done: str = _("%(decision)s: %(n)d.")  # the message, with %(decision)s and %(n)d

    @property
    def action_name(self) -> str:
        return self.action or self.name


def messages_of(exc: Exception) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


def _on_form(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class DecisionAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows take `decisions`; see the module's docstring."""

    decisions: tuple[Decision, ...] = ()
    decision_template = "admin/decision_form.html"
    change_form_template = "admin/decision_change_form.html"

    def decision_context(self, request, rows: list) -> dict:
        """What the decision page shows besides the form (one row's case, for instance)."""
        return {}

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            *(
                path(
                    f"<int:object_id>/{decision.name}/",
                    self.admin_site.admin_view(functools.partial(self._one, decision=decision)),
                    name="{}_{}_".format(*info) + decision.name,
                )
                for decision in self.decisions
                if decision.page
            ),
            *super().get_urls(),
        ]

    def get_actions(self, request):
        actions = super().get_actions(request)
        for decision in self.decisions:
            if decision.bulk and request.user.has_perm(decision.perm):

                def run(modeladmin, request, queryset, decision=decision):
                    return modeladmin._many(request, queryset, decision)

                actions[decision.action_name] = (run, decision.action_name, decision.label)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        row = self.get_object(request, object_id)
        info = self.opts.app_label, self.opts.model_name
        buttons = [
            ("admin:{}_{}_".format(*info) + decision.name, decision.label)
            for decision in self.decisions
            if row is not None
            and decision.page
            and request.user.has_perm(decision.perm)
            and decision.applies(row)
        ]
        extra_context = {**(extra_context or {}), "decision_buttons": buttons}
        return super().change_view(request, object_id, form_url, extra_context)

    def _one(self, request, object_id, *, decision: Decision):
        if not request.user.has_perm(decision.perm):
            raise PermissionDenied
        row = get_object_or_404(self.get_queryset(request), pk=object_id)
        back = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[row.pk])
        if not decision.applies(row):
            self.message_user(
                request,
                gettext("%(row)s: %(decision)s does not apply to it now.")
                % {"row": row, "decision": decision.label},
                messages.WARNING,
            )
            return HttpResponseRedirect(back)
        form = decision.form(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                decision.decide(row, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _on_form(form, exc)
            except PermissionDenied as exc:
                self.message_user(request, messages_of(exc), messages.ERROR)
                return HttpResponseRedirect(back)
            else:
                self._report(request, decision, done=1, refused=[])
                return HttpResponseRedirect(back)
        return self._page(request, decision, form, [row])

    def _many(self, request, queryset, decision: Decision):
        if not request.user.has_perm(decision.perm):
            raise PermissionDenied
        rows = [row for row in queryset if decision.applies(row)]
        skipped = len(queryset) - len(rows)
        form_class = decision.bulk_form or decision.form
        form = form_class(request.POST if "apply" in request.POST else None)
        if form_class is ConfirmForm or (form.is_bound and form.is_valid()):
            data = form.cleaned_data if form.is_bound and form.is_valid() else {}
            if decision.check_many is not None:
                try:
                    decision.check_many(rows, data)
                except ValidationError as exc:
                    _on_form(form, exc)
                    return self._page(
                        request,
                        decision,
                        form,
                        rows,
                        action=decision.action_name,
                        queryset=queryset,
                    )
            done, refused = 0, []
            for row in rows:
                try:
                    decision.decide(row, by=request.user, **data)
                except (PermissionDenied, ValidationError) as exc:
                    refused.append(f"{row}: {messages_of(exc)}")
                else:
                    done += 1
            if skipped:
                refused.append(
                    gettext("%(n)d selected row(s) were not in a state to %(decision)s.")
                    % {"n": skipped, "decision": str(decision.label).lower()}
                )
            self._report(request, decision, done=done, refused=refused)
            return None
        return self._page(
            request, decision, form, rows, action=decision.action_name, queryset=queryset
        )

    def _report(self, request, decision: Decision, *, done: int, refused: list[str]) -> None:
        if done or not refused:
            self.message_user(request, decision.done % {"decision": decision.label, "n": done})
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    def _page(self, request, decision, form, rows, *, action="", queryset=None):
        customer = getattr(rows[0], "customer", None) if len(rows) == 1 else None
        return TemplateResponse(
            request,
            self.decision_template,
            {
                **self.admin_site.each_context(request),
                "title": decision.label,
                "form": form,
                "media": self.media + form.media,
                "opts": self.opts,
                "rows": rows,
                "customer": customer,
                "action": action,
                "selected": [row.pk for row in queryset] if queryset is not None else [],
                "count": len(rows),
                **self.decision_context(request, rows),
            },
        )
