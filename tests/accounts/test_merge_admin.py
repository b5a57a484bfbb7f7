"""The console's merge: offered on the customer page and list, confirmed, permission-checked."""

import pytest

from accounts.models import Customer, Invoice
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(db):
    survivor = CustomerFactory(name="Transports Summit SA", source="demo", external_ref="C-0080")
    duplicate = CustomerFactory(
        name="TRANSPORTS SUMMIT S.A.", source="spreadsheet", external_ref="TS", country=""
    )
    InvoiceFactory(customer=duplicate, number="SUM-9001")
    return survivor, duplicate


def merge_url(customer) -> str:
    return f"/admin/accounts/customer/{customer.pk}/merge/"


@pytest.mark.parametrize("role", ["manager", "finance"])
def test_the_customer_page_points_at_the_likely_duplicate_and_offers_the_merge(
    client, request, role, pair
):
    survivor, duplicate = pair
    client.force_login(request.getfixturevalue(role))

    page = client.get(f"/admin/accounts/customer/{survivor.pk}/change/").content.decode()

    assert f"TRANSPORTS SUMMIT S.A. (#{duplicate.pk})" in page
    assert f'href="{merge_url(survivor)}"' in page


def test_agents_see_no_merge_and_may_not_open_it(client, agent, pair):
    survivor, duplicate = pair
    client.force_login(agent)

    page = client.get(f"/admin/accounts/customer/{survivor.pk}/change/").content.decode()

    assert merge_url(survivor) not in page
    assert client.get(merge_url(survivor)).status_code == 403
    answer = client.post(
        merge_url(survivor), {"duplicate": duplicate.pk, "reason": "dup", "merge": "1"}
    )
    assert answer.status_code == 403
    assert Customer.objects.get(pk=duplicate.pk).merged_into is None


def test_a_manager_chooses_sees_what_moves_and_confirms(client, manager, pair):
    survivor, duplicate = pair
    client.force_login(manager)

    choose = client.get(merge_url(survivor))
    assert choose.status_code == 200
    assert f'href="?duplicate={duplicate.pk}"' in choose.content.decode()

    confirm = client.get(merge_url(survivor), {"duplicate": duplicate.pk})
    html = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Invoices: <strong>1</strong>" in html
    assert "Nothing is written" not in html and Invoice.objects.get().customer == duplicate

    done = client.post(
        merge_url(survivor),
        {"duplicate": duplicate.pk, "reason": "Import made a duplicate", "merge": "1"},
    )

    assert done.status_code == 302
    assert done.url == f"/admin/accounts/customer/{survivor.pk}/change/"
    assert Invoice.objects.get().customer == survivor
    merged = client.get(f"/admin/accounts/customer/{duplicate.pk}/change/").content.decode()
    assert f"Merged into Transports Summit SA (#{survivor.pk})" in merged
    assert merge_url(duplicate) not in merged


def test_a_merge_without_a_reason_is_asked_again_naming_the_field(client, finance, pair):
    survivor, duplicate = pair
    client.force_login(finance)

    answer = client.post(merge_url(survivor), {"duplicate": duplicate.pk, "merge": "1"})

    assert answer.status_code == 200
    assert answer.context["form"].errors == {"reason": ["This field is required."]}
    assert Invoice.objects.get().customer == duplicate


def test_an_unknown_or_merged_duplicate_is_a_form_error_not_a_500(client, manager, pair):
    survivor, _duplicate = pair
    client.force_login(manager)

    for value in ("999999", "abc", str(survivor.pk)):
        answer = client.get(merge_url(survivor), {"duplicate": value})
        assert answer.status_code == 200
        assert "duplicate" in answer.context["form"].errors


def test_two_customers_selected_in_the_list_ask_which_one_stays(client, manager, pair):
    survivor, duplicate = pair
    client.force_login(manager)

    answer = client.post(
        "/admin/accounts/customer/",
        {"action": "merge_customers", "_selected_action": [survivor.pk, duplicate.pk]},
    )

    html = answer.content.decode()
    assert answer.status_code == 200
    assert f"{merge_url(survivor)}?duplicate={duplicate.pk}" in html
    assert f"{merge_url(duplicate)}?duplicate={survivor.pk}" in html


def test_the_list_action_needs_exactly_two_customers(client, manager, pair):
    survivor, _duplicate = pair
    client.force_login(manager)
    third = CustomerFactory()

    answer = client.post(
        "/admin/accounts/customer/",
        {
            "action": "merge_customers",
            "_selected_action": [survivor.pk, _duplicate.pk, third.pk],
        },
        follow=True,
    )

    assert "Select exactly two customers" in answer.content.decode()
