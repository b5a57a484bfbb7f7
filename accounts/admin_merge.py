"""The console's merge of a duplicate customer: choose, see what will move, confirm.

One page, three steps, all under the surviving customer's URL (`<id>/merge/`):

1. choose the duplicate: customers with the same normalised name are offered first, any
   other can be searched (the admin's autocomplete over customers);
2. the confirmation (`?duplicate=<id>`): what moves (rows per kind), what the duplicate
   fills in on the survivor, anything that forbids the merge, and the reason asked for;
3. the merge itself (`accounts.merging.merge_customers`, one transaction), then back to
   the survivor's page.

From the customer list, selecting exactly two customers asks which one survives and
leads to step 2. The right is `accounts.merge_customers` (managers and finance); the
service checks it again, with the customers each may work.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import merging
from .models import Customer

# Customers with the same normalised name offered as likely duplicates (a short list).
SUGGESTED = 10


class ChooseDuplicateForm(forms.Form):
    duplicate = forms.ModelChoiceField(
        queryset=Customer.objects.filter(merged_into__isnull=True),
        label=gettext_lazy("Duplicate to merge into this customer"),
        help_text=gettext_lazy("Search by name or reference."),
    )

    def __init__(self, *args, survivor: Customer, admin_site=admin.site, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["duplicate"]
        # The admin's own customer search, through a foreign key to customers.
        field.widget = AutocompleteSelect(Customer._meta.get_field("merged_into"), admin_site)
        field.queryset = field.queryset.exclude(pk=survivor.pk)  # and the widget's choices


class MergeForm(forms.Form):
    duplicate = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Kept on both customers' timelines."),
    )


def likely_duplicates(customer: Customer, limit: int = SUGGESTED) -> list[Customer]:
    """Other customers whose names normalise the same (one index probe)."""
    if not customer.normalized_name:
        return []
    return list(
        Customer.objects.filter(normalized_name=customer.normalized_name, merged_into__isnull=True)
        .exclude(pk=customer.pk)
        .order_by("pk")[:limit]
    )


def merge_page(modeladmin, request, customers):
    """The customer action: on one customer's page, merge a duplicate into it; on the
    list, with two customers selected, ask which one survives."""
    customers = list(customers)
    if len(customers) != 1:
        return _choose_survivor(modeladmin, request, customers)
    survivor = customers[0]
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": Customer._meta,
        "survivor": survivor,
        "title": _("Merge a duplicate into %(name)s") % {"name": survivor.name},
    }
    duplicate_id = request.POST.get("duplicate") or request.GET.get("duplicate")
    if not duplicate_id:
        form = ChooseDuplicateForm(survivor=survivor, admin_site=modeladmin.admin_site)
        context.update(form=form, media=modeladmin.media + form.media)
        context["suggestions"] = likely_duplicates(survivor)
        return TemplateResponse(request, "admin/accounts/customer/merge.html", context)
    choose = ChooseDuplicateForm(
        {"duplicate": duplicate_id}, survivor=survivor, admin_site=modeladmin.admin_site
    )
    if not choose.is_valid():
        context.update(form=choose, media=modeladmin.media + choose.media)
        context["suggestions"] = likely_duplicates(survivor)
        return TemplateResponse(request, "admin/accounts/customer/merge.html", context)
    duplicate = choose.cleaned_data["duplicate"]
    form = MergeForm(
        request.POST if "merge" in request.POST else None, initial={"duplicate": duplicate.pk}
    )
    if form.is_valid():
        try:
            moved = merging.merge_customers(
                survivor=survivor,
                duplicate=duplicate,
                by=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            for field, errors in (
                exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
            ):
                form.add_error(field if field in ("reason",) else None, errors)
        except PermissionDenied as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
        else:
            modeladmin.message_user(
                request,
                _("%(duplicate)s (#%(id)s) was merged into %(name)s: %(n)d rows moved.")
                % {
                    "duplicate": duplicate.name,
                    "id": duplicate.pk,
                    "name": survivor.name,
                    "n": sum(moved.values()),
                },
            )
            return HttpResponseRedirect(
                reverse("admin:accounts_customer_change", args=[survivor.pk])
            )
    context.update(
        duplicate=duplicate,
        plan=merging.plan_merge(survivor=survivor, duplicate=duplicate),
        form=form,
        title=_("Merge %(duplicate)s into %(name)s")
        % {"duplicate": duplicate.name, "name": survivor.name},
    )
    return TemplateResponse(request, "admin/accounts/customer/merge_confirm.html", context)


def _choose_survivor(modeladmin, request, customers):
    if len(customers) != 2:
        modeladmin.message_user(
            request, _("Select exactly two customers to merge one into the other."), messages.ERROR
        )
        return HttpResponseRedirect(reverse("admin:accounts_customer_changelist"))
    first, second = customers
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": Customer._meta,
        "title": _("Which customer stays?"),
        "choices": [
            (
                keep,
                other,
                reverse("admin:accounts_customer_merge", args=[keep.pk]) + f"?duplicate={other.pk}",
            )
            for keep, other in ((first, second), (second, first))
        ],
    }
    return TemplateResponse(request, "admin/accounts/customer/merge_choose.html", context)
