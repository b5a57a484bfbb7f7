"""Saved filters: a console list's query string kept under a name, per user and private.

Every changelist shows the user's saved filters for that list (links to the list with
the saved query), a box to save the current query under a name, and a delete button on
each (templates/admin/change_list.html, staff/templatetags/console_lists.py). Saving a
name again replaces its query. A user only ever reads, uses or deletes their own rows:
every query here filters on request.user, and another user's id answers 404.
"""

from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .models import SavedFilter

# Parameters that say where in a list one is, not what it lists.
NOT_SAVED = {"p", "e", "_changelist_filters", "format"}
NAME_LENGTH = SavedFilter._meta.get_field("name").max_length
QUERY_LENGTH = SavedFilter._meta.get_field("query").max_length


def clean_query(query: str) -> str:
    """The query string without the page number and the console's own parameters."""
    pairs = [(key, value) for key, value in parse_qsl(query, keep_blank_values=True)]
    return urlencode([(key, value) for key, value in pairs if key not in NOT_SAVED])


def list_url(list_label: str, query: str = "") -> str:
    app_label, _dot, model_name = list_label.partition(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return f"{url}?{query}" if query else url


def _model_admin(list_label: str):
    for model, model_admin in admin.site._registry.items():
        if model._meta.label_lower == list_label:
            return model_admin
    return None


@require_POST
def save_filter(request):
    """Save the posted query of a list under the posted name (the same name: replaced)."""
    list_label = request.POST.get("list", "")
    model_admin = _model_admin(list_label)
    if model_admin is None:
        return HttpResponseBadRequest(_("list: there is no such list."))
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    query = clean_query(request.POST.get("query", ""))
    name = " ".join(request.POST.get("name", "").split())
    back = list_url(list_label, query)
    if not name:
        messages.error(request, _("Name: give the filter a name."))
        return redirect(back)
    if len(name) > NAME_LENGTH:
        messages.error(request, _("Name: at most %(n)s characters.") % {"n": NAME_LENGTH})
        return redirect(back)
    if len(query) > QUERY_LENGTH:
        messages.error(request, _("This filter is too long to save."))
        return redirect(back)
    with transaction.atomic():
        mine = SavedFilter.objects.select_for_update().filter(user=request.user, list=list_label)
        existing = mine.filter(name=name).first()
        if existing is None and mine.count() >= settings.SAVED_FILTERS_PER_LIST:
            messages.error(
                request,
                _("You have %(n)s saved filters for this list; delete one first.")
                % {"n": settings.SAVED_FILTERS_PER_LIST},
            )
            return redirect(back)
        if existing is None:
            SavedFilter.objects.create(user=request.user, list=list_label, name=name, query=query)
        else:
            existing.query = query
            existing.save(update_fields=["query"])
    messages.success(request, _("Filter “%(name)s” saved.") % {"name": name})
    return redirect(back)


@require_POST
def delete_filter(request, filter_id: int):
    """Delete one of the user's own saved filters (anyone else's: 404)."""
    saved = get_object_or_404(SavedFilter, pk=filter_id, user=request.user)
    saved.delete()
    messages.success(request, _("Filter “%(name)s” deleted.") % {"name": saved.name})
    try:
        return redirect(list_url(saved.list, request.POST.get("query", "")))
    except NoReverseMatch as exc:
        raise Http404 from exc
