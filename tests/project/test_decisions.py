"""The console's one decision flow (accounts/admin_decisions.py), through the notices'."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import Activity
from dunning.models import Notice, Step
from tests.clock import ON
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
NOTICES = reverse("admin:dunning_notice_changelist")


def notice(status=Notice.Status.AWAITING_APPROVAL) -> Notice:
    step = Step.objects.filter(channel="email").first()
    return Notice.objects.create(
        customer=CustomerFactory(), step=step, channel="email", planned_on=ON, status=status
    )


def page(client, row) -> str:
    return client.get(reverse("admin:dunning_notice_change", args=[row.pk])).content.decode()


def test_a_rows_page_offers_the_decisions_its_state_and_the_users_rights_allow(
    client, manager, agent
):
    waiting, sent = notice(), notice(Notice.Status.SENT)
    approve = reverse("admin:dunning_notice_approve", args=[waiting.pk])
    client.force_login(manager)
    assert approve in page(client, waiting)
    assert reverse("admin:dunning_notice_skip", args=[waiting.pk]) in page(client, waiting)
    assert reverse("admin:dunning_notice_approve", args=[sent.pk]) not in page(client, sent)
    client.force_login(agent)
    assert approve not in page(client, waiting)
    assert client.get(approve).status_code == 403


def test_one_row_asks_why_then_decides_and_the_timeline_says_who_and_why(client, manager):
    waiting = notice()
    url = reverse("admin:dunning_notice_approve", args=[waiting.pk])
    client.force_login(manager)

    assert b'name="reason"' in client.get(url).content
    refused = client.post(url, {"apply": "1", "reason": ""})
    assert refused.status_code == 200 and b"This field is required" in refused.content
    done = client.post(url, {"apply": "1", "reason": "checked the balance"})

    assert done.status_code == 302 and done.url.endswith(f"/{waiting.pk}/change/")
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by) == (Notice.Status.APPROVED, manager)
    entry = Activity.objects.get(kind=Activity.Kind.OVERRIDE)
    assert entry.actor == manager and "checked the balance" in entry.text


def test_a_decision_that_no_longer_applies_changes_nothing(client, manager):
    sent = notice(Notice.Status.SENT)
    client.force_login(manager)
    url = reverse("admin:dunning_notice_reject", args=[sent.pk])

    response = client.post(url, {"apply": "1", "reason": "too late"})

    assert response.status_code == 302
    assert "does not apply" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    sent.refresh_from_db()
    assert sent.status == Notice.Status.SENT and not Activity.objects.exists()


def test_a_selection_decides_the_rows_it_applies_to_and_says_what_it_left(client, manager):
    waiting, other, sent = notice(), notice(), notice(Notice.Status.SENT)
    client.force_login(manager)
    selected = [waiting.pk, other.pk, sent.pk]

    form = client.post(NOTICES, {"action": "reject", "_selected_action": selected})
    assert b'name="reason"' in form.content and b"2 rows selected" in form.content
    response = client.post(
        NOTICES,
        {"action": "reject", "_selected_action": selected, "apply": "1", "reason": "duplicate"},
    )

    lines = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Reject: 2 notice(s)." in lines
    assert any("1 selected row(s) were not in a state to reject" in line for line in lines)
    assert set(Notice.objects.values_list("status", flat=True)) == {"rejected", "sent"}
