"""A console driven through headless Chromium, checking every page it sees.

`Console` wraps one Selenium WebDriver: it logs in through the login form (the second
factor included), visits pages, fills and submits forms, and after every page checks that
no response was 4xx/5xx and that the browser logged no error (JavaScript errors, refused
scripts or styles, failed loads). The checks read Chrome's two logs: `performance` (the
DevTools network events, with each response's status) and `browser` (the console).
"""

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

from django.conf import settings
from django_otp.oath import TOTP
from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser import selectors as s

PASSWORD = "pw-for-tests-only"  # tests.factories.UserFactory's
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1280, 900)
WAIT_SECONDS = 30  # a page, a PDF being rendered, on a loaded 2-core CI machine
FAILURES_DIR = Path(settings.BASE_DIR) / "var" / "browser-failures"
DOCS_IMAGES = Path(settings.BASE_DIR) / "docs" / "img"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    return None


def start_chromium(download_dir: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root, in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
            "plugins.always_open_pdf_externally": True,  # a PDF downloads, not displays
        },
    )
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)}
    )
    return driver


def totp_code(device) -> str:
    """The code an authenticator app would show now for this django_otp TOTP device."""
    totp = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    totp.time = time.time()
    return str(totp.token()).zfill(device.digits)


class PageProblem(AssertionError):
    pass


def replaced(old_page):
    """A wait condition: the old page's root element has left the document.

    Selenium's `staleness_of` knows only StaleElementReferenceException; Chromium answers a
    check that lands while the old document is being torn down with "Node with given id does
    not belong to the document" instead, which means the same thing."""

    def gone(driver) -> bool:
        try:
            old_page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc) or "No node with given id" in str(exc):
                return True
            raise
        return False

    return gone


class Console:
    def __init__(self, driver: webdriver.Chrome, base_url: str, download_dir: Path):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.download_dir = download_dir
        self.problems: list[str] = []
        self.pages: list[str] = []  # every URL checked, for the report

    # --- navigation ------------------------------------------------------------------

    def visit(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.check()

    def click(self, css: str, **ids) -> None:
        """Click the element (a link or a button) and check the page it leads to."""
        self.navigate_by(self.find(css.format(**ids)))

    def navigate_by(self, element) -> None:
        """Click an element that loads another page; wait for that page, then check it."""
        old_page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, WAIT_SECONDS).until(replaced(old_page))
        self.wait_ready()
        self.check()

    def click_text(self, text: str) -> None:
        """Click the link or button showing exactly this text."""
        xpath = (
            f"//a[normalize-space(.)='{text}'] | //button[normalize-space(.)='{text}']"
            f" | //input[@type='submit' and @value='{text}']"
        )
        self.navigate_by(self.driver.find_element(By.XPATH, xpath))

    def find(self, css: str):
        return WebDriverWait(self.driver, WAIT_SECONDS).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def has(self, css: str) -> bool:
        return bool(self.driver.find_elements(By.CSS_SELECTOR, css))

    def wait_ready(self) -> None:
        WebDriverWait(self.driver, WAIT_SECONDS).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    @property
    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    # --- forms -----------------------------------------------------------------------

    def field(self, name: str):
        return self.find(f"[name='{name}']")

    def fill(self, **values) -> None:
        """Type into text fields and pick options of selects, by field name."""
        for name, value in values.items():
            element = self.field(name)
            if element.tag_name == "select":
                Select(element).select_by_value(str(value))
            elif element.get_attribute("type") in ("date", "file"):
                self.set(name, value)
            else:
                element.clear()
                element.send_keys(str(value))

    def set(self, name: str, value) -> None:
        """Set a field the keyboard cannot type reliably (date pickers, file inputs)."""
        element = self.field(name)
        if element.get_attribute("type") == "file":
            element.send_keys(str(value))
        else:
            if isinstance(value, dt.date):
                value = value.isoformat()
            self.driver.execute_script("arguments[0].value = arguments[1];", element, str(value))

    def select_in_two_boxes(self, from_box: str, choose: str, text: str) -> None:
        """Django's two-box multiple select (FilteredSelectMultiple): pick the options whose
        label contains `text` in the left box, then press the arrow that moves them."""
        box = Select(self.find(f"#{from_box}"))
        for option in box.options:
            if text in option.text:
                box.select_by_visible_text(option.text)
        self.find(f"#{choose}").click()

    def submit(self, css: str = s.SUBMIT_APPLY) -> None:
        self.click(css)

    # --- login -----------------------------------------------------------------------

    def log_in(self, user, device=None) -> None:
        """Through the login form; with a TOTP device, through the second factor too.

        The login wizard asks for the code of the user's device named "default" (the one
        its enrolment makes): create the test's TOTPDevice with name="default"."""
        self.visit(s.LOGIN_URL)
        self.fill(**{s.LOGIN_USERNAME: user.get_username(), s.LOGIN_PASSWORD: PASSWORD})
        self.click(s.LOGIN_NEXT)
        if device is not None:
            self.fill(**{s.LOGIN_TOKEN: totp_code(device)})
            self.click(s.LOGIN_NEXT)
        if not self.has(s.LOGGED_IN_MARK):
            raise PageProblem(f"not logged in as {user}: {self.path}\n{self.text[:500]}")

    # --- downloads -------------------------------------------------------------------

    def wait_for_download(self, suffix: str, timeout: float = 30) -> Path:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [
                p
                for p in self.download_dir.iterdir()
                if p.suffix == suffix and not p.name.endswith(".crdownload")
            ]
            if done:
                return done[0]
            time.sleep(0.2)
        raise TimeoutException(f"no {suffix} file downloaded in {timeout} s")

    # --- the checks ------------------------------------------------------------------

    def check(self) -> None:
        """Fail on any 4xx/5xx response or browser error since the last check."""
        self.pages.append(self.path)
        problems = []
        for entry in self.driver.get_log("performance"):
            event = json.loads(entry["message"])["message"]
            params = event.get("params", {})
            if event["method"] == "Network.responseReceived":
                response = params["response"]
                if response["status"] >= 400:
                    problems.append(f"HTTP {response['status']} {response['url']}")
            elif event["method"] == "Network.loadingFailed" and not params.get("canceled"):
                problems.append(f"failed to load ({params.get('errorText')}): {params}")
        problems += [
            f"browser {entry['level']}: {entry['message']}"
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE"
        ]
        if problems:
            self.problems += problems
            raise PageProblem(f"on {self.path}:\n" + "\n".join(problems))

    # --- pictures ----------------------------------------------------------------------

    def shot(self, name: str) -> None:
        """With DOCS_SCREENSHOTS=1, save this page for the manual as docs/img/<name>.png."""
        if os.environ.get("DOCS_SCREENSHOTS") != "1":
            return
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(DOCS_IMAGES / f"{name}.png"))

    def save_failure(self, name: str) -> Path:
        FAILURES_DIR.mkdir(parents=True, exist_ok=True)
        picture = FAILURES_DIR / f"{name}.png"
        self.driver.save_screenshot(str(picture))
        (FAILURES_DIR / f"{name}.html").write_text(self.driver.page_source)
        return picture
