"""Saved filters on every console list: per user, private; save, list, use, delete."""

import pytest
from django.urls import reverse

from staff.models import SavedFilter
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
CUSTOMERS = reverse("admin:accounts_customer_changelist")
INVOICES = reverse("admin:accounts_invoice_changelist")
SAVE = reverse("console-saved-filter-save")


def save(client, name, query, list_label="accounts.customer"):
    return client.post(SAVE, {"list": list_label, "name": name, "query": query})


def test_save_a_filter_and_find_it_on_the_list(client, agent):
    client.force_login(agent)
    response = save(client, "My late accounts", "agent=me&past_due=any&o=-8&p=3")
    assert response.status_code == 302
    assert response["Location"] == f"{CUSTOMERS}?agent=me&past_due=any&o=-8"
    saved = SavedFilter.objects.get()
    assert (saved.user, saved.list, saved.query) == (
        agent,
        "accounts.customer",
        "agent=me&past_due=any&o=-8",
    )
    html = client.get(CUSTOMERS).content.decode()
    assert "My late accounts" in html
    assert f'href="{CUSTOMERS}?agent=me&amp;past_due=any&amp;o=-8"' in html
    # On another list it is not shown.
    assert "My late accounts" not in client.get(INVOICES).content.decode()


def test_saving_a_name_again_replaces_its_query(client, agent):
    client.force_login(agent)
    save(client, "Mine", "agent=me")
    save(client, "Mine", "agent=me&past_due=1000")
    assert list(SavedFilter.objects.values_list("name", "query")) == [
        ("Mine", "agent=me&past_due=1000")
    ]


def test_filters_are_private(client, agent, manager):
    SavedFilter.objects.create(
        user=manager, list="accounts.customer", name="Big ones", query="past_due=10000"
    )
    client.force_login(agent)
    assert "Big ones" not in client.get(CUSTOMERS).content.decode()
    theirs = SavedFilter.objects.get()
    response = client.post(reverse("console-saved-filter-delete", args=[theirs.pk]))
    assert response.status_code == 404
    assert SavedFilter.objects.filter(pk=theirs.pk).exists()


def test_delete_your_own(client, agent):
    client.force_login(agent)
    save(client, "Old", "status=active")
    saved = SavedFilter.objects.get()
    response = client.post(
        reverse("console-saved-filter-delete", args=[saved.pk]), {"query": "q=x"}
    )
    assert response.status_code == 302 and response["Location"] == f"{CUSTOMERS}?q=x"
    assert not SavedFilter.objects.exists()
    assert client.get(reverse("console-saved-filter-delete", args=[saved.pk])).status_code == 405


def test_bad_input_names_the_field(client, agent, settings):
    client.force_login(agent)
    page = client.get(save(client, "   ", "q=x")["Location"]).content.decode()
    assert "Name: give the filter a name." in page
    page = client.get(save(client, "x" * 81, "q=x")["Location"]).content.decode()
    assert "Name: at most 80 characters." in page
    assert save(client, "Nope", "", list_label="nothing.here").status_code == 400
    settings.SAVED_FILTERS_PER_LIST = 1
    save(client, "One", "q=a")
    page = client.get(save(client, "Two", "q=b")["Location"]).content.decode()
    assert "delete one first" in page
    assert list(SavedFilter.objects.values_list("name", flat=True)) == ["One"]


def test_a_list_the_user_cannot_see_cannot_be_saved(client):
    outsider = UserFactory()
    client.force_login(outsider)
    assert save(client, "Peek", "q=a").status_code == 403
    assert not SavedFilter.objects.exists()
