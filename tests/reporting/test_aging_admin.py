"""The aging report in the admin: permissions per role, the page, the downloads."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from reporting.models import ReportExport
from tests.factories import CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 11, 23)
PAGE = "/admin/reporting/aging/"
EXPORT = "/admin/reporting/aging/export/"

REPORTING = {
    "Collections agent": {"view_aging_report", "view_statement"},
    "Collections manager": {
        "view_aging_report",
        "export_aging_report",
        "view_statement",
        "view_reportexport",
        "view_scheduledreport",
        "add_scheduledreport",
        "change_scheduledreport",
        "delete_scheduledreport",
        "view_dashboard",
        "view_effectiveness_report",
    },
    "Finance": {
        "view_aging_report",
        "export_aging_report",
        "view_statement",
        "view_reportexport",
        "view_scheduledreport",
    },
}


@pytest.fixture
def open_items():
    customer = CustomerFactory(name="Delta Ltd")
    InvoiceFactory(
        customer=customer, due_on=AS_OF - dt.timedelta(days=40), amount=Decimal("321.00")
    )
    return customer


def test_roles_hold_exactly_the_reporting_permissions():
    for name, expected in REPORTING.items():
        held = set(
            Group.objects.get(name=name)
            .permissions.filter(content_type__app_label="reporting")
            .values_list("codename", flat=True)
        )
        assert held == expected, name


def test_urls_have_stable_names():
    assert reverse("admin:reporting_aging_changelist") == PAGE
    assert reverse("admin:reporting_aging_export") == EXPORT
    assert reverse("admin:reporting_statement", args=[7]) == "/admin/reporting/statement/7/"


def test_manager_sees_the_summary_and_download_buttons(client, manager, open_items):
    client.force_login(manager)
    response = client.get(PAGE, {"as_of": AS_OF.isoformat(), "group_by": "segment"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="aging-summary"' in body and "321.00" in body and "Delta Ltd" in body
    assert f"{EXPORT}?as_of=2026-11-23&amp;group_by=segment&amp;format=pdf" in body
    assert "<svg" in body  # the bucket chart, drawn on the server
    index = client.get("/admin/").content.decode()
    assert PAGE in index  # listed under Reporting


def test_agent_may_view_but_not_download(client, agent, open_items):
    client.force_login(agent)
    response = client.get(PAGE, {"as_of": AS_OF.isoformat()})
    assert response.status_code == 200
    assert "format=csv" not in response.content.decode()
    for fmt in ("csv", "xlsx", "pdf"):
        assert client.get(EXPORT, {"as_of": AS_OF.isoformat(), "format": fmt}).status_code == 403
    assert not ReportExport.objects.exists()


def test_staff_without_a_role_gets_403_everywhere(client, open_items):
    nobody = UserFactory(username="nobody")
    client.force_login(nobody)
    assert client.get(PAGE).status_code == 403
    assert client.get(EXPORT, {"format": "csv"}).status_code == 403
    statement = reverse("admin:reporting_statement", args=[open_items.pk])
    assert client.get(statement).status_code == 403
    assert PAGE not in client.get("/admin/").content.decode()


def test_finance_downloads_a_streamed_csv_that_is_recorded(client, finance, open_items):
    client.force_login(finance)
    response = client.get(
        EXPORT, {"as_of": AS_OF.isoformat(), "format": "csv", "min_balance": "300"}
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="aging-2026-11-23.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    [customer] = [row for row in rows if row[0] == "customer"]
    assert customer[3] == "Delta Ltd" and customer[8] == "321.00"  # 31-60
    record = ReportExport.objects.get()
    assert (record.user, record.via, record.row_count) == (finance, "admin", 1)
    assert record.filters["min_balance"] == "300"


def test_bad_report_options_answer_400(client, manager):
    client.force_login(manager)
    assert client.get(EXPORT, {"format": "doc"}).status_code == 400
    assert client.get(EXPORT, {"format": "csv", "edges": "90,30"}).status_code == 400
    assert client.get(EXPORT, {"format": "csv", "as_of": "yesterday"}).status_code == 400
    page = client.get(PAGE, {"edges": "90,30"})
    assert page.status_code == 200 and "increasing" in page.content.decode()


def test_report_exports_are_read_only_in_the_admin(client, manager, open_items):
    client.force_login(manager)
    client.get(EXPORT, {"as_of": AS_OF.isoformat(), "format": "xlsx"})
    record = ReportExport.objects.get()
    assert client.get("/admin/reporting/reportexport/").status_code == 200
    change = client.get(f"/admin/reporting/reportexport/{record.pk}/change/")
    assert change.status_code == 200 and "Save" not in change.content.decode()
    assert client.get("/admin/reporting/reportexport/add/").status_code == 403
