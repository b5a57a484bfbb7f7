"""Tools on every console list: export links (CSV, XLSX) and the user's saved filters."""

from django import template
from django.urls import reverse

from staff.models import SavedFilter
from staff.saved_filters import clean_query, list_url

register = template.Library()

EXPORT_PERMISSION = "staff.export_lists"


def _query(request) -> str:
    return clean_query(request.META.get("QUERY_STRING", ""))


@register.inclusion_tag("admin/console_list_export.html", takes_context=True)
def list_export_links(context, cl):
    """Links that export this list as it is filtered, searched and sorted now."""
    request = context["request"]
    if not request.user.has_perm(EXPORT_PERMISSION):
        return {"links": []}
    opts = cl.model._meta
    url = reverse("console-list-export", args=[opts.app_label, opts.model_name])
    query = _query(request)
    return {
        "links": [
            (label, f"{url}?format={fmt}" + (f"&{query}" if query else ""))
            for fmt, label in (("csv", "CSV"), ("xlsx", "XLSX"))
        ]
    }


@register.inclusion_tag("admin/console_saved_filters.html", takes_context=True)
def saved_filters(context, cl):
    """The user's saved filters for this list, and a form to save the current one."""
    request = context["request"]
    label = cl.model._meta.label_lower
    query = _query(request)
    mine = SavedFilter.objects.filter(user=request.user, list=label).only("name", "query")
    return {
        "csrf_token": context.get("csrf_token"),
        "list": label,
        "query": query,
        "save_url": reverse("console-saved-filter-save"),
        "filters": [
            {
                "name": saved.name,
                "url": list_url(label, saved.query),
                "is_current": saved.query == query,
                "delete_url": reverse("console-saved-filter-delete", args=[saved.pk]),
            }
            for saved in mine
        ],
    }
