"""Browsers ask every site for /favicon.ico: a 404 there is an error in every page's log."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_site_icon_is_served_without_a_login(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
    assert "max-age=86400" in response["Cache-Control"]
