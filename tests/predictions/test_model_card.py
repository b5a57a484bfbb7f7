"""The model card in the console: every role reads a model's track record; only a manager
activates another version, by a POST with its CSRF token."""

import datetime as dt

import pytest
from django.urls import reverse

from predictions import registry
from predictions.models import PredictorModel
from tests.predictions.history import habits_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_models():
    habits_ledger(customers=16, invoices=8)
    first, _, _ = registry.train(as_of=dt.date(2025, 8, 1))
    second, _, _ = registry.train(as_of=dt.date(2025, 8, 1), activate_when="never")
    return first, second


def test_the_card_shows_the_track_record_beside_the_baselines(client, agent, two_models):
    first, _second = two_models
    client.force_login(agent)
    page = client.get(reverse("admin:predictions_predictormodel_change", args=[first.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="model-card"' in html and 'id="calibration-chart"' in html
    assert "Baseline: the risk score" in html and "share of late invoices" in html
    chosen = first.figures["candidates"][first.classifier_kind]
    assert str(chosen["roc_auc"]) in html
    assert first.figures["weights"] and 'id="model-weights"' in html
    assert "Activate this version" not in html  # an agent cannot, and it is active anyway
    listing = client.get(reverse("admin:predictions_predictormodel_changelist"))
    assert listing.status_code == 200 and "v2" not in listing.content.decode()[:0]


def test_only_a_manager_activates_a_version(client, agent, manager, two_models):
    first, second = two_models
    url = reverse("admin:predictions_predictormodel_activate", args=[second.pk])
    client.force_login(agent)
    assert client.post(url).status_code == 403
    client.force_login(manager)
    page = client.get(reverse("admin:predictions_predictormodel_change", args=[second.pk]))
    assert "Activate this version" in page.content.decode()
    assert client.get(url).status_code == 405  # a GET changes nothing
    response = client.post(url)
    assert response.status_code == 302
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.is_active and not first.is_active
    assert second.activated_by == manager and "activated by" in second.activation_note
    assert PredictorModel.objects.filter(is_active=True).count() == 1
