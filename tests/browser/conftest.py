"""The browser tests' fixtures: a live server on the test database, and headless Chromium.

They run in `make test` with the rest of the suite (marked `browser`; `-m "not browser"`
leaves them out). Without Chromium they are skipped with the reason, unless `CI` is set:
CI installs Chromium (.ci/run), so there a missing browser is a failure.
"""

import os
import re

import pytest
from django.test import override_settings

from tests.browser.console import Console, browser_missing, start_chromium


def pytest_collection_modifyitems(config, items):
    """Mark the browser tests; without a browser, skip them before any database is made."""
    reason = browser_missing()
    for item in items:
        if "tests/browser/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            if reason and not os.environ.get("CI"):
                item.add_marker(pytest.mark.skip(reason=f"no browser here: {reason}"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, for the screenshot on failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def console_server(request):
    """pytest-django's live server, started with the HTTPS redirect off.

    The server's middleware reads SECURE_SSL_REDIRECT once, when the server starts (before
    any test's `settings` fixture), so the override is needed while it starts."""
    with override_settings(SECURE_SSL_REDIRECT=False):
        return request.getfixturevalue("live_server")


@pytest.fixture
def browser_settings(settings):
    """Plain-HTTP cookies the browser keeps whatever today's real date is.

    The suite's clock is frozen at tests.clock.NOW, which may be long before or after the
    real date the browser lives in: cookies without an expiry date never look expired."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    settings.CSRF_COOKIE_AGE = None
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture
def console(request, console_server, live_server, browser_settings, tmp_path):
    """A Console in a fresh headless Chromium; a screenshot and the page's HTML go to
    var/browser-failures/ when the test fails. (`live_server` is named here too, after
    `console_server`, so that pytest-django gives the test its transactional database and
    the server's host in ALLOWED_HOSTS.)"""
    reason = browser_missing()
    if reason:  # only under CI: elsewhere the tests were skipped when collected
        pytest.fail(f"CI runs the browser tests, and {reason}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = start_chromium(downloads)
    console = Console(driver, console_server.url, downloads)
    try:
        yield console
        # A late error (a script failing after the last step) fails the test too.
        if not any(
            getattr(getattr(request.node, f"report_{when}", None), "failed", False)
            for when in ("setup", "call")
        ):
            console.check()
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::", 1)[-1])
            picture = console.save_failure(name)
            report.sections.append(("browser", f"screenshot: {picture}\npages: {console.pages}"))
        driver.quit()
