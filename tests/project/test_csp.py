"""The Content-Security-Policy header, and console pages that work under it: every script
is a same-site file or carries the request's nonce, no inline handlers, no foreign hosts."""

import re
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
EXECUTABLE = {"", "text/javascript", "module", "application/javascript"}


class PageScan(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block."""

    def __init__(self, nonce: str):
        super().__init__()
        self.nonce = nonce
        self.blocked: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.blocked.append(f"<{tag} {name}=...> (inline handler)")
            if name in ("href", "src", "action") and (value or "").lower().startswith(
                "javascript:"
            ):
                self.blocked.append(f"<{tag} {name}=javascript:...>")
        if tag == "script":
            src = values.get("src")
            if values.get("type", "").lower() not in EXECUTABLE:
                return  # data (json_script), not run
            if src is None and values.get("nonce") != self.nonce:
                self.blocked.append("<script> inline without the nonce")
            if src and re.match(r"^(https?:)?//", src):
                self.blocked.append(f"<script src={src}> from another host")
        if tag == "style" and values.get("nonce") != self.nonce:
            self.blocked.append("<style> without the nonce")
        foreign = re.match(r"^(https?:)?//", values.get("href") or "")
        if tag == "link" and values.get("rel") == "stylesheet" and foreign:
            self.blocked.append(f"<link href={values['href']}> from another host")


def nonce_of(response) -> str:
    policy = response["Content-Security-Policy"]
    found = re.search(r"'nonce-([^']+)'", policy)
    return found.group(1) if found else ""


# Django's own change list adds one cosmetic <style> (a column width) when a list has no
# actions; the CSP drops that rule and nothing else. It is the only one tolerated.
DJANGO_CHANGELIST_STYLE = re.compile(
    r"<style>\s*#changelist table thead th:first-child \{width: inherit\}\s*</style>"
)


def blocked_on(response) -> list[str]:
    scan = PageScan(nonce_of(response))
    scan.feed(DJANGO_CHANGELIST_STYLE.sub("", response.content.decode()))
    return scan.blocked


def test_every_page_carries_a_strict_policy(client):
    response = client.get(reverse("two_factor:login"))
    policy = response["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in directives["style-src-elem"]


def test_the_login_and_enrolment_pages_run_under_it(client, manager):
    assert blocked_on(client.get(reverse("two_factor:login"))) == []
    client.force_login(manager)
    for name in ("two_factor:profile", "two_factor:backup_tokens", "staff:verify"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert blocked_on(response) == [], name


def console_pages():
    """Every model's list and add page, and our own console pages."""
    for model in admin.site._registry:
        opts = model._meta
        for view in ("changelist", "add"):
            try:
                yield reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}")
            except NoReverseMatch:
                continue


def test_every_console_page_runs_under_it(client, superuser):
    customer = CustomerFactory()
    InvoiceFactory(customer=customer)
    client.force_login(superuser)
    pages = [
        reverse("admin:index"),
        reverse("admin:accounts_customer_change", args=[customer.pk]),
        reverse("admin:cases_task_worklist"),
        *(
            reverse("admin:integrations_intakebatch_import_kind", args=[kind])
            for kind in ("invoices", "customers", "contacts", "payments")
        ),
        *console_pages(),
    ]
    problems = {}
    checked = 0
    for page in pages:
        response = client.get(page)
        if response.status_code != 200 or "text/html" not in response["Content-Type"]:
            continue
        checked += 1
        assert "Content-Security-Policy" in response, page
        if blocked := blocked_on(response):
            problems[page] = blocked
    assert checked > 40
    assert problems == {}


def test_the_scan_finds_what_the_policy_would_block():
    scan = PageScan("abc")
    scan.feed(
        '<script>alert(1)</script><script nonce="abc">ok()</script>'
        '<button onclick="x()">x</button><a href="javascript:x()">x</a>'
        '<script src="//cdn.example.com/x.js"></script><style>p{}</style>'
        '<script type="application/json">{}</script>'
    )
    assert len(scan.blocked) == 5


def test_the_api_docs_page_may_load_swagger_ui_from_its_cdn_only(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "https://cdn.jsdelivr.net" in policy
    assert "cdn.jsdelivr.net" not in client.get(reverse("admin:index"))["Content-Security-Policy"]
    inline = [item for item in blocked_on(response) if "inline" in item]
    assert inline == []
