"""The access log: every surface that shows a debtor's personal data records who saw whom."""

import datetime as dt

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessLog, AppendOnlyError
from tests.factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
Surface = AccessLog.Surface


def logged(surface: str, user=None) -> list[tuple]:
    rows = AccessLog.objects.filter(surface=surface)
    if user is not None:
        rows = rows.filter(user=user)
    return sorted((row.user_id, row.customer_id) for row in rows)


@pytest.fixture
def customers(agent):
    return [CustomerFactory(name=f"Debtor {n}", assigned_agent=agent) for n in range(3)]


def test_customer_page_is_logged_with_user_customer_and_path(client, manager, customers):
    client.force_login(manager)
    url = reverse("admin:accounts_customer_change", args=[customers[0].pk])
    assert client.get(url, {"q": "secret@example.com"}).status_code == 200
    entry = AccessLog.objects.get()
    assert (entry.user, entry.customer, entry.surface) == (manager, customers[0], "customer_page")
    assert entry.path == url  # the path only: a query string may hold personal data
    assert timezone.now() - dt.timedelta(minutes=1) < entry.at <= timezone.now()


def test_customer_list_logs_each_customer_shown_in_one_insert(client, manager, customers):
    client.force_login(manager)
    url = reverse("admin:accounts_customer_changelist")
    with CaptureInserts() as inserts:
        assert client.get(url).status_code == 200
    assert logged(Surface.CUSTOMER_LIST) == sorted((manager.pk, c.pk) for c in customers)
    assert inserts.count == 1
    assert len({row.request_id for row in AccessLog.objects.all()}) == 1
    client.get(url, {"q": "Debtor 1"})
    assert logged(Surface.CUSTOMER_LIST).count((manager.pk, customers[1].pk)) == 2


def test_contact_list_and_page_log_the_contacts_customer(client, manager, customers):
    contact = ContactFactory(customer=customers[2])
    client.force_login(manager)
    client.get(reverse("admin:accounts_contact_changelist"), {"q": contact.email})
    assert logged(Surface.CONTACT_LIST) == [(manager.pk, customers[2].pk)]
    client.get(reverse("admin:accounts_contact_change", args=[contact.pk]))
    assert logged(Surface.CONTACT_PAGE) == [(manager.pk, customers[2].pk)]


def test_timeline_list_and_entry_are_logged(client, manager, customers):
    entry = ActivityFactory(customer=customers[1])
    client.force_login(manager)
    client.get(reverse("admin:accounts_activity_changelist"))
    client.get(reverse("admin:accounts_activity_change", args=[entry.pk]))
    assert logged(Surface.TIMELINE) == [(manager.pk, customers[1].pk)] * 2


def test_worklist_logs_the_customers_it_lists(client, agent, customers):
    for customer in customers[:2]:
        InvoiceFactory(customer=customer, due_on=timezone.localdate() - dt.timedelta(days=40))
        TaskFactory(customer=customer, assignee=agent)
    client.force_login(agent)
    assert client.get(reverse("admin:cases_task_worklist")).status_code == 200
    shown = {customer_id for _user, customer_id in logged(Surface.WORKLIST, agent)}
    assert {customers[0].pk, customers[1].pk} <= shown


def test_api_customer_list_and_detail_are_logged(manager, customers):
    api = APIClient()
    api.force_authenticate(manager)
    assert api.get("/api/v1/customers/").status_code == 200
    assert logged(Surface.API_CUSTOMER_LIST) == sorted((manager.pk, c.pk) for c in customers)
    assert api.get(f"/api/v1/customers/{customers[0].pk}/").status_code == 200
    assert logged(Surface.API_CUSTOMER) == [(manager.pk, customers[0].pk)]


def test_api_contact_list_and_detail_are_logged(manager, customers):
    contact = ContactFactory(customer=customers[1])
    api = APIClient()
    api.force_authenticate(manager)
    assert api.get("/api/v1/contacts/", {"customer": customers[1].pk}).status_code == 200
    assert logged(Surface.API_CONTACT_LIST) == [(manager.pk, customers[1].pk)]
    assert api.get(f"/api/v1/contacts/{contact.pk}/").status_code == 200
    assert logged(Surface.API_CONTACT) == [(manager.pk, customers[1].pk)]


def test_a_refused_api_read_logs_nothing(customers):
    outsider = UserFactory()
    api = APIClient()
    api.force_authenticate(outsider)
    assert api.get(f"/api/v1/customers/{customers[0].pk}/").status_code == 403
    assert not AccessLog.objects.exists()


def test_statement_download_is_logged(client, manager, customers):
    InvoiceFactory(customer=customers[0])
    client.force_login(manager)
    response = client.get(reverse("admin:reporting_statement", args=[customers[0].pk]))
    assert response.status_code == 200
    entry = AccessLog.objects.get(surface=Surface.STATEMENT)
    assert (entry.user, entry.customer) == (manager, customers[0])
    assert entry.details["report_export"]


def test_portfolio_export_and_report_page_are_logged(client, superuser, customers):
    InvoiceFactory(customer=customers[0], due_on=timezone.localdate() - dt.timedelta(days=20))
    client.force_login(superuser)
    client.get(reverse("admin:reporting_aging_changelist"))
    assert (superuser.pk, customers[0].pk) in logged(Surface.REPORT)
    response = client.get(reverse("admin:reporting_aging_export"), {"format": "xlsx"})
    assert response.status_code == 200
    export = AccessLog.objects.get(surface=Surface.EXPORT)
    assert (export.user, export.customer) == (superuser, None)
    assert export.details["format"] == "xlsx" and export.details["report_export"]


def test_log_refuses_update_and_delete_through_the_orm(client, manager, customers):
    client.force_login(manager)
    client.get(reverse("admin:accounts_customer_change", args=[customers[0].pk]))
    entry = AccessLog.objects.get()
    with pytest.raises(AppendOnlyError):
        AccessLog.objects.update(user=None)
    with pytest.raises(AppendOnlyError):
        AccessLog.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_database_refuses_update_and_delete(client, manager, customers):
    client.force_login(manager)
    client.get(reverse("admin:accounts_customer_change", args=[customers[0].pk]))
    for statement in (
        "UPDATE accounts_accesslog SET user_id = NULL",
        "DELETE FROM accounts_accesslog",
    ):
        with (
            pytest.raises((IntegrityError, InternalError)),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert AccessLog.objects.count() == 1


def test_console_finds_entries_by_customer_and_user_and_links_from_the_customer(
    client, manager, agent, customers
):
    client.force_login(agent)
    client.get(reverse("admin:accounts_customer_change", args=[customers[0].pk]))
    client.get(reverse("admin:accounts_customer_change", args=[customers[1].pk]))
    client.force_login(manager)
    page = client.get(reverse("admin:accounts_customer_change", args=[customers[0].pk]))
    who = reverse("admin:accounts_accesslog_changelist") + f"?customer={customers[0].pk}"
    assert who in page.content.decode()
    found = client.get(who)
    assert found.status_code == 200
    assert {(e.user_id, e.customer_id) for e in found.context["cl"].result_list} == {
        (agent.pk, customers[0].pk),
        (manager.pk, customers[0].pk),
    }
    by_user = client.get(reverse("admin:accounts_accesslog_changelist"), {"user": agent.pk})
    assert {e.customer_id for e in by_user.context["cl"].result_list} == {
        customers[0].pk,
        customers[1].pk,
    }
    by_name = client.get(reverse("admin:accounts_accesslog_changelist"), {"q": "Debtor 1"})
    assert {e.customer_id for e in by_name.context["cl"].result_list} == {customers[1].pk}
    day = timezone.localdate()
    dated = client.get(
        reverse("admin:accounts_accesslog_changelist"),
        {"at__year": day.year, "at__month": day.month, "at__day": day.day},
    )
    assert dated.status_code == 200 and len(dated.context["cl"].result_list) >= 3


def test_agents_cannot_read_the_log_and_nobody_can_change_it(client, agent, superuser, customers):
    client.force_login(agent)
    assert client.get(reverse("admin:accounts_accesslog_changelist")).status_code == 403
    page = client.get(reverse("admin:accounts_customer_change", args=[customers[0].pk]))
    assert "Who viewed this" not in page.content.decode()
    entry = AccessLog.objects.get()
    client.force_login(superuser)
    assert (
        client.get(reverse("admin:accounts_accesslog_delete", args=[entry.pk])).status_code == 403
    )
    change = client.post(reverse("admin:accounts_accesslog_change", args=[entry.pk]), {})
    assert change.status_code == 403
    assert AccessLog.objects.get().user == agent


class CaptureInserts:
    """Counts the INSERT statements into the access log while active."""

    def __enter__(self):
        self.count = 0
        self._hook = connection.execute_wrapper(self._count)
        self._hook.__enter__()
        return self

    def __exit__(self, *exc):
        self._hook.__exit__(*exc)

    def _count(self, execute, sql, params, many, context):
        if sql.lstrip().startswith('INSERT INTO "accounts_accesslog"'):
            self.count += 1
        return execute(sql, params, many, context)
