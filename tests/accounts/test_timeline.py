import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Activity, AppendOnlyError
from tests.factories import ActivityFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_orm_refuses_to_edit_a_timeline_entry():
    entry = ActivityFactory()
    entry.text = "rewritten history"
    with pytest.raises(AppendOnlyError):
        entry.save()
    entry.refresh_from_db()
    assert entry.text != "rewritten history"


def test_orm_refuses_to_delete_a_timeline_entry():
    entry = ActivityFactory()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        Activity.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AppendOnlyError):
        Activity.objects.filter(pk=entry.pk).update(text="x")
    assert Activity.objects.filter(pk=entry.pk).exists()


def test_saving_an_entry_with_a_reused_pk_cannot_overwrite_the_original():
    entry = ActivityFactory(text="original")
    forged = Activity(pk=entry.pk, customer=entry.customer, kind="note", text="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        forged.save()
    entry.refresh_from_db()
    assert entry.text == "original"


@pytest.mark.postgresql
def test_database_trigger_refuses_update_and_delete_behind_the_orm():
    entry = ActivityFactory(text="original")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE accounts_activity SET text = 'x' WHERE id = %s", [entry.pk])
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM accounts_activity WHERE id = %s", [entry.pk])
    entry.refresh_from_db()
    assert entry.text == "original"


def test_admin_shows_timeline_entries_read_only_and_refuses_changes(client, manager):
    entry = ActivityFactory(text="original")
    client.force_login(manager)
    change_url = reverse("admin:accounts_activity_change", args=[entry.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert b'name="text"' not in page.content  # no editable field
    response = client.post(change_url, {"text": "edited", "kind": "note"})
    assert response.status_code == 403
    delete_url = reverse("admin:accounts_activity_delete", args=[entry.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:accounts_activity_add")).status_code == 403
    entry.refresh_from_db()
    assert entry.text == "original"


def test_superuser_cannot_edit_or_delete_the_timeline_in_the_admin(client, superuser):
    entry = ActivityFactory(text="original")
    client.force_login(superuser)
    change_url = reverse("admin:accounts_activity_change", args=[entry.pk])
    assert client.post(change_url, {"text": "edited"}).status_code == 403
    delete_url = reverse("admin:accounts_activity_delete", args=[entry.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.text == "original"


def test_api_appends_notes_but_refuses_edits_and_deletes(agent):
    customer = CustomerFactory(assigned_agent=agent)
    api = APIClient()
    api.force_authenticate(agent)
    created = api.post(
        "/api/v1/activities/",
        {"customer": customer.pk, "kind": "note", "text": "Left a message with AP."},
        format="json",
    )
    assert created.status_code == 201, created.content
    entry = Activity.objects.get(pk=created.json()["id"])
    assert entry.actor == agent
    url = f"/api/v1/activities/{entry.pk}/"
    assert api.put(url, {"text": "x"}, format="json").status_code == 405
    assert api.patch(url, {"text": "x"}, format="json").status_code == 405
    assert api.delete(url).status_code == 405
    entry.refresh_from_db()
    assert entry.text == "Left a message with AP."


def test_api_refuses_system_entry_kinds(agent):
    customer = CustomerFactory(assigned_agent=agent)
    api = APIClient()
    api.force_authenticate(agent)
    response = api.post(
        "/api/v1/activities/",
        {"customer": customer.pk, "kind": "payment", "text": "fake payment"},
        format="json",
    )
    assert response.status_code == 400
    assert "kind" in response.json()


def test_customer_page_shows_the_timeline_newest_first_and_paginated(client, manager):
    customer = CustomerFactory()
    for n in range(30):
        ActivityFactory(customer=customer, text=f"entry {n:02d}")
    client.force_login(manager)
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    first = client.get(url).content.decode()
    assert "entry 29" in first and "entry 05" in first and "entry 04" not in first
    assert first.index("entry 29") < first.index("entry 28")
    second = client.get(url, {"timeline_page": 2}).content.decode()
    assert "entry 04" in second and "entry 29" not in second
