"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's
``live_server``.

Skipped where Chromium is not installed, unless CLIENTDB_REQUIRE_BROWSER is set (CI sets
it, after installing Debian's ``chromium`` package). No browser is ever downloaded.

With CLIENTDB_SCREENSHOTS=<folder>, the ``screenshot`` fixture saves named PNGs there (the
flows under ``<folder>/flows/``; test_screenshots.py makes the ones of docs/screenshots/).
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: As the machine's probe starts it: no background networking (the sandbox refuses it).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: The width of the screenshots in docs/screenshots/.
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = os.environ.get("CLIENTDB_SCREENSHOTS", "")


@pytest.fixture(scope="package")
def browser(django_db_setup):
    """One Chromium for the browser tests (each test gets its own context: cookies, pages)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CLIENTDB_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium is required but not installed at {CHROMIUM}")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's synchronous API runs an event loop in this thread; the tests' own database
    # work is synchronous all the same.
    # The test database's initial rows (Wagtail's root page, site and locale), which each test
    # gets back (serialized_rollback), are kept on this thread's connection.
    serialized = {alias: getattr(connections[alias], "_test_serialized_contents", None) for alias in connections}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        with sync_playwright() as playwright:
            # From here on Django keeps connections per context (see browser_context): the
            # ones the tests use need the rows too.
            for alias, contents in serialized.items():
                if contents is not None:
                    connections[alias]._test_serialized_contents = contents
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
                connections.close_all()


@pytest.fixture(autouse=True)
def no_gravatar(settings):
    """Wagtail's default avatar: the pages may load nothing from outside (no broken image)."""
    settings.WAGTAIL_GRAVATAR_PROVIDER_URL = None


@pytest.fixture
def browser_context(browser):
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", accept_downloads=True)
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()
        # While Playwright's event loop runs in this thread, Django keeps this thread's
        # database connection per context (asgiref): the test's queries opened one that
        # the test teardown does not see, and that would keep the test database in use.
        connections.close_all()


@pytest.fixture
def browser_page(browser_context):
    return browser_context.new_page()


@pytest.fixture
def log_in_as(browser_context, live_server):
    """Log the browser in as ``user`` without the login form (test_login.py tests that), with
    the session cookie of a test client's login."""

    def log_in(user):
        client = Client()
        client.force_login(user)
        browser_context.clear_cookies()
        browser_context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
              "url": live_server.url}]
        )

    return log_in


@pytest.fixture
def admin_url(live_server):
    """The live server's URL of a path or URL name (with its args)."""
    from django.urls import reverse

    def url(name_or_path, *args, query=""):
        path = name_or_path if name_or_path.startswith("/") else reverse(name_or_path, args=args)
        return live_server.url + path + (f"?{query}" if query else "")

    return url


def save_screenshot(page, path, *, full_page=False):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    if full_page:
        # Wagtail's admin scrolls inside its main element, which Playwright's full_page
        # misses: the viewport grows to the content instead.
        height = page.evaluate(
            "Math.max(document.documentElement.scrollHeight,"
            " ...Array.from(document.querySelectorAll('main, #main, .content-wrapper'), (e) => e.scrollHeight))"
        )
        page.set_viewport_size({"width": viewport["width"], "height": min(max(height, viewport["height"]), 4000)})
    try:
        # The caret of a focused field and Wagtail's transitions would make every run differ.
        page.screenshot(path=str(path), animations="disabled", caret="hide")
    finally:
        if full_page:
            page.set_viewport_size(viewport)


@pytest.fixture
def screenshot(request):
    """``screenshot(page, "step")`` saves ``<CLIENTDB_SCREENSHOTS>/flows/<test>-<step>.png``
    when that variable is set, and does nothing otherwise."""

    def take(page, step, *, full_page=False):
        if SCREENSHOTS:
            test = re.sub(r"[^\w-]+", "-", request.node.name.removeprefix("test_"))
            save_screenshot(page, Path(SCREENSHOTS) / "flows" / f"{test}-{step}.png", full_page=full_page)

    return take


@pytest.fixture
def booking_site(db, branch_a):
    """Alpha Salon's booking page, open every day 9–17, with one service."""
    import datetime

    from wagtail.models import Site

    from tests.conftest import make_service
    from wagtail_clientdb.models import BookingPage, CustomerGroup, OpeningHours

    for weekday in range(7):
        OpeningHours.objects.create(branch=branch_a, weekday=weekday, opens=datetime.time(9), closes=datetime.time(17))
    make_service("Cut & blow-dry", branch_a, duration=60)
    CustomerGroup.objects.create(name="Online bookings", is_default=True)
    home = Site.objects.get(is_default_site=True).root_page
    return home.add_child(instance=BookingPage(title="Book at Alpha", slug="book-alpha", branch=branch_a))
