"""Every console page answers hostile query strings with a page or a 4xx, never a 500.

The sweep walks every page the admin site serves without an object id (changelists and
the custom report, import and worklist pages) and every change page with impossible ids.
"""

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, URLPattern, URLResolver, reverse

HOSTILE = [
    {"q": "%_\\'\"" * 200, "o": "abc.-99", "p": "99999999999999999999"},
    {"status": "\x00"},
    {"customer__id__exact": "1e9999"},
    {"created_at__gte": "2026-13-45"},
    {"as_of": "2026-13-45", "on": "0000-00-00", "date": "x", "currency": "XXX", "period": "x"},
    {"_changelist_filters": "status__exact=%00"},
]


def _pages():
    """Names of the admin's pages that take no argument."""
    names = []

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, namespace)
            elif (
                isinstance(pattern, URLPattern)
                and pattern.name
                and not pattern.pattern.regex.groups
            ):
                names.append(f"{namespace}:{pattern.name}")

    walk(admin.site.get_urls(), "admin")
    return sorted(set(names) - {"admin:logout", "admin:jsi18n"})


@pytest.fixture
def console(admin_client):
    admin_client.raise_request_exception = False
    return admin_client


@pytest.mark.django_db
@pytest.mark.parametrize("name", _pages())
def test_no_page_answers_500(console, name):
    url = reverse(name)
    failures = [
        (params, response.status_code)
        for params in HOSTILE
        if (response := console.get(url, params)).status_code >= 500
    ]
    assert not failures, f"{url}: {failures}"


@pytest.mark.django_db
def test_no_change_page_answers_500_for_an_impossible_id(console):
    failures = []
    for model in admin.site._registry:
        info = model._meta.app_label, model._meta.model_name
        for object_id in ("abc", "99999999999999999999", "-1", "1e9999"):
            try:
                url = reverse(f"admin:{info[0]}_{info[1]}_change", args=[object_id])
            except NoReverseMatch:  # a report page with no object pages
                break
            if (status := console.get(url).status_code) >= 500:
                failures.append((url, status))
    assert not failures


@pytest.mark.django_db
def test_a_nul_in_the_query_string_is_refused_naming_the_parameter(console, client):
    response = console.get(reverse("admin:accounts_invoice_changelist"), {"status": "\x00"})
    assert response.status_code == 400
    assert "“status”" in response.content.decode()
    api = client.get("/api/v1/invoices/", {"currency": "\x00"})
    assert api.status_code == 400
    assert "currency" in api.json()


def _add_pages():
    names = []
    for model in admin.site._registry:
        try:
            names.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add"))
        except NoReverseMatch:
            continue
    return sorted(names)


@pytest.mark.django_db
@pytest.mark.parametrize("url", _add_pages())
def test_no_add_form_answers_500_to_impossible_values(console, url):
    """Every field (and every inline's first form) posted with a value it cannot hold: the
    form is shown again with its errors, whatever its widgets and read-only fields do."""
    page = console.get(url)
    if page.status_code != 200 or "adminform" not in (page.context or {}):
        pytest.skip(f"{url} has no add form ({page.status_code})")
    failures = []
    for value in ("NaN", "\x00", "-1", "2026-13-45"):
        data = dict.fromkeys(page.context["adminform"].form.fields, value)
        for inline in page.context.get("inline_admin_formsets", []):
            prefix = inline.formset.prefix
            data |= {
                f"{prefix}-TOTAL_FORMS": "1",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
            data |= {f"{prefix}-0-{name}": value for name in inline.formset.form.base_fields}
        if (status := console.post(url, data).status_code) >= 500:
            failures.append((repr(value), status))
    assert not failures
