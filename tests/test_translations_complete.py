"""The admin and the booking page speak German and French: every string the app shows is
marked for translation and translated (issue #14).

Each page is rendered through its real URL with the Django test client, as a branch manager,
as branch staff or as a visitor, once in English and once in German and in French (the admin
language is the user's Wagtail profile setting, which Wagtail's admin views activate; the
booking page follows the visitor's Accept-Language through Django's LocaleMiddleware, as in a
project). Pages reached by a form (errors, messages after an action) are sent the form. From
each page the words a person reads are collected: text nodes; the title, placeholder,
aria-label, alt and tooltip attributes and the values of buttons; and the labels and widget
HTML in the JSON that Wagtail's scripts render (menus, panels). Then:

1. A string that reads the same in English and in German (or French) must be data: the names,
   emails, numbers and dates of the world below, a time zone or a country name (CLDR), a brand
   or format word (:data:`SAME_IN_EVERY_LANGUAGE`), or words that the language's own catalogs
   write (the app's, Wagtail's and Django's: the German "Status", the French "Notes").
   Anything else is English that nobody translated: a string not marked for translation, or
   not translated. :data:`WAGTAILS_OWN` lists the few strings Wagtail itself leaves in English.
2. None of the app's own English sentences (the msgids of its catalogs) appears in the German
   or French page, not even in a script or an attribute.

The booking confirmation email is read the same way, line by line. A failure names the page,
the language and each English string found. To look at the pages, set CLIENTDB_DUMP_PAGES to
a folder: each is written there as <page>.<language>.html.
"""

import datetime
import functools
import html
import json
import os
import re
import types
import zoneinfo
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable
from unittest import mock

import babel
import pytest
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone, translation
from wagtail.log_actions import log
from wagtail.models import Site
from wagtail.users.models import UserProfile

import wagtail_clientdb
from tests.conftest import customer_url, make_customer
from tests.import_files import csv_bytes, xlsx_sheets_bytes
from wagtail_clientdb import booking, deletion, scope, tasks, versions
from wagtail_clientdb.models import (
    Appointment,
    AttributeDefinition,
    BookingPage,
    BulkActionJob,
    BulkActionStatus,
    Branch,
    ClientDBSettings,
    ConsentEvent,
    CustomerGroup,
    CustomerOverride,
    ExportJob,
    ImportJob,
    OpeningHours,
    Service,
)
from wagtail_clientdb.public_booking import booked_token

LANGUAGES = ["de", "fr"]
LOCALE_DIR = Path(wagtail_clientdb.__file__).parent / "locale"

# --- What a person reads on a page -------------------------------------------------------------------

#: Attributes whose value is shown to people (as a tooltip, read by a screen reader, or in a field).
SHOWN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-w-tooltip-content-value"}
#: Elements whose content is not read as text (JSON data is read by :func:`json_texts`).
NOT_TEXT = {"script", "style"}
#: Keys of the JSON that Wagtail's scripts render (menus, panels, widgets) whose values are shown.
SHOWN_JSON_KEYS = {"label", "heading", "helpText", "help_text", "title", "text", "footer_text", "description"}


class ShownText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts = []
        self.skipping = 0
        self.json = None

    def add(self, text):
        text = " ".join(text.split())
        if text:
            self.texts.append(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in NOT_TEXT:
            self.skipping += 1
            if tag == "script" and attrs.get("type") == "application/json":
                self.json = []
        for name in SHOWN_ATTRIBUTES & attrs.keys():
            self.add(attrs[name] or "")
        if tag == "input" and (attrs.get("type") or "").lower() in ("submit", "button", "reset"):
            self.add(attrs.get("value") or "")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in NOT_TEXT:
            self.skipping -= 1

    def handle_endtag(self, tag):
        if tag in NOT_TEXT and self.skipping:
            self.skipping -= 1
        if tag == "script" and self.json is not None:
            self.texts += json_texts(json.loads("".join(self.json) or "null"))
            self.json = None

    def handle_data(self, data):
        if self.json is not None:
            self.json.append(data)
        elif not self.skipping:
            self.add(data)


def shown_texts(page_html):
    parser = ShownText()
    parser.feed(page_html)
    parser.close()
    return parser.texts


def json_texts(value, key=None):
    """What the page's scripts show from its JSON data: labels, and the HTML of widgets and panels."""
    if isinstance(value, dict):
        return [text for k, v in value.items() for text in json_texts(v, k)]
    if isinstance(value, list):
        return [text for item in value for text in json_texts(item, key)]
    if isinstance(value, str) and "<" in value and ">" in value:
        return shown_texts(value)
    if isinstance(value, str) and key in SHOWN_JSON_KEYS:
        return [" ".join(value.split())] if value.strip() else []
    return []


# --- The app's catalogs -----------------------------------------------------------------------------


def read_po(path):
    """{msgid: msgstr} of a .po file, without a library (the format is simple enough): a plural
    entry by its singular and first form; a fuzzy entry as untranslated, as gettext does."""
    entries = {}
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        fields, key, fuzzy = {}, None, False
        for line in block.splitlines():
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif line.startswith('"') and key:
                fields[key] += unquote(line)
            elif not line.startswith("#") and " " in line:
                key, rest = line.split(" ", 1)
                fields[key] = unquote(rest)
        if fields.get("msgid"):
            entries[fields["msgid"]] = "" if fuzzy else fields.get("msgstr", fields.get("msgstr[0]", ""))
    return entries


def unquote(text):
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    return re.sub(r"\\(.)", lambda match: escapes.get(match.group(1), match.group(1)), text.strip()[1:-1])


CATALOGS = {language: read_po(LOCALE_DIR / language / "LC_MESSAGES" / "django.po") for language in LANGUAGES}
#: Where a msgid is cut to be looked for in a page: at its placeholders and markup.
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|<[^>]+>|\{\{.*?\}\}")


@functools.cache
def english_sentences(language):
    """Pieces of the app's English msgids, long enough (two words or more, ten characters or
    more) that a German or French page cannot hold them by chance."""
    pieces = set()
    for msgid, msgstr in CATALOGS[language].items():
        if msgstr == msgid:
            continue
        for piece in PLACEHOLDER.split(msgid):
            piece = piece.strip(" .,:;()“”\"'–-")
            if len(piece) >= 10 and " " in piece:
                pieces.add(piece)
    return pieces


# --- Data and words that read the same in every language ------------------------------------------

#: Words that are the same in English, German and French, and why.
SAME_IN_EVERY_LANGUAGE = [
    # Brands, products and file formats.
    "Client DB tests",  # the site's name (WAGTAIL_SITE_NAME)
    "Wagtail", "CSV", "XLSX", "XLS", "JSON", "UTF-8", "E.164", "API",
    # Key names in Wagtail's keyboard shortcuts dialog, which Wagtail leaves untranslated.
    "Ctrl", "Shift", "Alt", "Esc",
]
#: Whole strings of Wagtail's own templates that Wagtail does not mark for translation (not the
#: app's to translate; each would be a bug report to Wagtail).
WAGTAILS_OWN = {
    "Search",  # the hidden submit button of the header search (wagtailadmin/shared/header.html)
    "Actions",  # aria-label of the header buttons (wagtailadmin/shared/headers/_actions.html)
    # The help menu's link: Wagtail words it once, when it first builds the menu (gettext, not
    # gettext_lazy), so it stays in the language of the process's first admin request.
    "What's new in Wagtail 8.0",
}

#: Readable data: an email address, a URL, a number, a date or a time, a phone number.
DATA_PATTERNS = re.compile(r"\S+@\S+|https?://\S+|[+]?\d[\d\s.,:/–\-+%]*|\b(?:AM|PM|a\.m\.|p\.m\.)", re.IGNORECASE)
WORD = re.compile(r"[^\W\d_]{2,}")
TIME_ZONES = zoneinfo.available_timezones()


def words_left(text, world):
    """``text`` without the world's data, brands and formats: what a translator would translate."""
    rest = text
    for value in sorted([*world.data, *SAME_IN_EVERY_LANGUAGE], key=len, reverse=True):
        rest = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", rest)
    rest = DATA_PATTERNS.sub(" ", rest)
    return " ".join(rest.split()).strip(" -–·:,;.()|/*")


@functools.cache
def own_words(language):
    """Every piece of text the app's, Wagtail's and Django's catalogs of ``language`` write (split at
    their placeholders): the German "Status" and "Attribute", the French "Date" and "minutes"."""
    catalog = translation.trans_real.translation(language)._catalog
    return {
        piece.strip(" .,:;()“”\"'–-").lower()  # labels are shown with a capital first letter
        for _key, msgstr in catalog.items()
        for piece in PLACEHOLDER.split(msgstr)
    } - {""}


@functools.cache
def country_names(language):
    """The countries as the language names them (the phone region choices), from Babel's CLDR data."""
    return set(babel.Locale.parse(language).territories.values())


def is_acceptable(text, world, language):
    """A string that may read the same in English and in ``language``: data, a word of the
    language's own catalogs, or something Wagtail leaves in English."""
    if text in WAGTAILS_OWN or text in TIME_ZONES or text.lower() in own_words(language):
        return True
    rest = words_left(text, world)
    return not WORD.search(rest) or rest.lower() in own_words(language) or rest in country_names(language)


def untranslated(world, english_html, other_html, language):
    """The English strings of a page rendered in ``language``."""
    english = set(shown_texts(english_html))
    found = [
        text
        for text in dict.fromkeys(shown_texts(other_html))
        if text in english and not is_acceptable(text, world, language)
    ]
    readable = html.unescape(other_html)
    for sentence in sorted(english_sentences(language)):
        if sentence in readable and not any(sentence in text for text in found):
            found.append(f"{sentence}  (an English msgid of the app)")
    return found


# --- The world: a business with two salons --------------------------------------------------------


def set_language(user, language):
    profile = UserProfile.get_for_user(user)
    profile.preferred_language = language
    profile.save()


def upload(client, name, rows):
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile(name, csv_bytes(rows))})
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.filter(created_by=response.wsgi_request.user).latest("pk")


IMPORT_HEADER = ["Vorname", "Nachname", "E-Mail", "Telefon", "Haartyp"]
IMPORT_ROWS = [
    ["Ines", "Importa", "ines@example.com", "0170 1111111", "fein"],
    ["Ivo", "Importb", "kein-mail", "0170 2222222", "dick"],
]


@pytest.fixture(autouse=True)
def fresh_start():
    """No booking rate limit left over; and the language of this thread as it was before (the
    LocaleMiddleware of the booking page leaves the visitor's language active)."""
    cache.clear()
    with translation.override(translation.get_language()):
        yield


@pytest.fixture
def world(db, make_user, manager_group, staff_group, settings):
    # The booking page follows the visitor's language, as a project with LocaleMiddleware does.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE]
    sessions = settings.MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware")
    settings.MIDDLEWARE.insert(sessions + 1, "django.middleware.locale.LocaleMiddleware")
    w = types.SimpleNamespace()
    w.alpha = Branch.objects.create(name="Alpha Salon", slug="alpha", timezone="Europe/Berlin", address="Hauptstraße 1\n10115 Berlin")
    w.beta = Branch.objects.create(name="Beta Salon", slug="beta", timezone="Europe/Vienna")
    for weekday in range(7):
        OpeningHours.objects.create(branch=w.alpha, weekday=weekday, opens=datetime.time(9), closes=datetime.time(18))
    # The company's settings are the managers' too; the roles are named as the business names them.
    manager_group.permissions.add(
        Permission.objects.get(content_type__app_label="wagtail_clientdb", codename="change_clientdbsettings")
    )
    Group.objects.filter(pk=manager_group.pk).update(name="Filialleitung")
    Group.objects.filter(pk=staff_group.pk).update(name="Filialteam")
    w.manager = make_user("mmandel", groups=[manager_group], first_name="Maria", last_name="Mandel")
    w.staff = make_user("sstern", groups=[staff_group], branches=[w.alpha], first_name="Stefan", last_name="Stern")
    settings_model = ClientDBSettings.load()
    settings_model.branches_may_edit_global_customers = True
    settings_model.save()

    w.vip = CustomerGroup.objects.create(name="VIP", description="Beste Kundschaft")
    w.web = CustomerGroup.objects.create(name="Webkundschaft", is_default=True)
    w.cut = Service.objects.create(name="Herrenschnitt", duration=30)
    w.colour = Service.objects.create(name="Färben", duration=90)
    for service in (w.cut, w.colour):
        service.branches.add(w.alpha, w.beta)

    definitions = [
        dict(
            label="Haartyp", key="hair_type", field_type="text", regex=r"^\w+$", regex_error_message="Nur ein Wort",
            help_text="Fein oder dick",
        ),
        dict(label="Allergien", key="allergies", field_type="textarea"),
        dict(label="Stammgast", key="regular", field_type="boolean"),
        dict(label="Besuche", key="visits", field_type="integer"),
        dict(label="Rabatt", key="discount", field_type="decimal"),
        dict(label="Lieblingsfarbe", key="colour", field_type="choice", choices=["Kupfer", "Aschblond"], show_in_booking_form=True),
        dict(label="Erstbesuch", key="first_visit", field_type="date"),
        dict(
            label="Wunsch", key="wish", field_type="text", applies_to="booking", show_in_booking_form=True,
            required_in_booking_form=True,
        ),
        dict(label="Begleitung", key="companion", field_type="boolean", applies_to="booking", show_in_booking_form=True),
    ]
    w.attributes = [AttributeDefinition.objects.create(sort_order=i, **d) for i, d in enumerate(definitions)]
    values = {
        "hair_type": "fein", "allergies": "Latex", "regular": True, "visits": 12, "discount": "7.5", "colour": "Kupfer",
        "first_visit": "2019-04-01",
    }

    w.gloria = make_customer(
        first_name="Gloria", last_name="Globalall", email="gloria@example.com", phone="+491701234567", phone_raw="0170 1234567",
        birthday=datetime.date(1980, 5, 17), notes="Mag Tee", marketing_consent=True, external_id="K-1001",
        shared_with_all_branches=True, attributes=values,
    )
    w.gloria.groups.add(w.vip)
    w.gloria.tags.add("stammgast", "allergie")
    ConsentEvent.objects.create(customer=w.gloria, given=True, channel="form", recorded_by=w.manager)
    ConsentEvent.objects.create(customer=w.gloria, given=False, channel="admin", recorded_by=w.manager)
    w.gerd = make_customer(
        first_name="Gerd", last_name="Specifica", email="gerd@example.com", branches=[w.alpha], attributes={"colour": "Aschblond"}
    )
    CustomerOverride.objects.create(customer=w.gerd, branch=w.alpha, last_name="Spezi", notes="Nur hier", attributes={"visits": 3})
    w.lena = make_customer(
        first_name="Lena", last_name="Locala", email="lena@example.com", phone_raw="12", home_branch=w.alpha,
        source="online_booking",
    )
    w.lena.groups.add(w.web)
    w.lars = make_customer(first_name="Lars", last_name="Localb", email="lars@example.com", home_branch=w.beta, source="import")

    now = timezone.now()

    def appointment(customer, branch, start, service, status="booked", **fields):
        return Appointment.objects.create(
            customer=customer, branch=branch, start=start, end=start + datetime.timedelta(minutes=service.duration),
            service=service, status=status, staff=w.staff, **fields,
        )

    today = datetime.datetime.combine(timezone.localdate(timezone=w.alpha.zoneinfo), datetime.time(11, 30), tzinfo=w.alpha.zoneinfo)
    w.today = appointment(w.gloria, w.alpha, today, w.cut, attributes={"wish": "Kurz", "companion": True}, notes="Erster Termin")
    w.past = appointment(w.gloria, w.alpha, now - datetime.timedelta(days=3), w.colour, status="completed")
    appointment(w.gloria, w.alpha, now - datetime.timedelta(days=2), w.cut, status="no_show")
    appointment(w.gloria, w.beta, now - datetime.timedelta(days=1), w.cut, status="cancelled")
    w.upcoming = appointment(w.lena, w.alpha, now + datetime.timedelta(days=2), w.colour)
    appointment(w.gerd, w.alpha, now - datetime.timedelta(hours=3), w.cut)  # booked, started: awaits its status
    appointment(w.lars, w.beta, now + datetime.timedelta(days=1), w.cut)
    w.deletion = deletion.request_deletion(scope.Viewer(w.staff, False, (w.alpha,)), w.lena)
    assert w.deletion.status == "blocked"

    log(w.gloria, "wagtail.create", user=w.manager)
    log(w.gloria, "wagtail.edit", user=w.manager)
    log(w.gloria, "wagtail_clientdb.edit_via_api", user=w.manager)

    home = Site.objects.get(is_default_site=True).root_page
    w.page = home.add_child(instance=BookingPage(title="Termin bei Alpha", slug="termin-alpha", branch=w.alpha))

    w.data = {
        "Alpha Salon", "Beta Salon", "Hauptstraße 1", "Berlin", "Europe/Berlin", "Europe/Vienna", "alpha", "beta",
        "Maria Mandel", "Maria", "Mandel", "mmandel", "Stefan Stern", "Stefan", "Stern", "sstern", "MM", "SS",
        "VIP", "Beste Kundschaft", "Webkundschaft", "Herrenschnitt", "Färben", "stammgast", "allergie",
        "Termin bei Alpha", "termin-alpha", "Kurz", "Erster Termin", "Mag Tee", "Nur hier", "Latex", "fein", "dick",
        "Kupfer", "Aschblond", "K-1001", "Nur ein Wort", "Fein oder dick",
        "Filialleitung", "Filialteam",
        *(d.label for d in w.attributes), *(d.key for d in w.attributes),
        *(f"{c.first_name} {c.last_name}" for c in (w.gloria, w.gerd, w.lena, w.lars)),
        "Gerd Spezi", "Gloria", "Globalall", "Gerd", "Specifica", "Spezi", "Lena", "Locala", "Lars", "Localb",
        "Ines", "Importa", "Ivo", "Importb", "Dora Deletia", "Clara", "neu", "kein-mail", "Globalal",
        "customers.csv", "unknown-columns.csv", "refused.csv", "clean.csv",
        *IMPORT_HEADER, "Kundennr", "Kasse", "Farbe", "Kasse 1", "rot", "Drei Termine nicht erschienen",
    }
    return w


def import_jobs(world, client):
    """The import pages' jobs, made by the page's user in the page's language (an import's
    refused rows are worded when it is checked, by whoever uploads it)."""
    mapping = upload(client, "unknown-columns.csv", [["Kundennr", "Kasse", "Farbe"], ["4711", "Kasse 1", "rot"]])
    preview = upload(client, "customers.csv", [IMPORT_HEADER, *IMPORT_ROWS])
    refused = upload(client, "refused.csv", [["E-Mail", "Vorname"], ["gloria@example.com", "Gloria"], ["neu@example.com", "Nora"]])
    # Gloria changes after the preview: the all-or-nothing import is refused.
    type(world.gloria).objects.filter(pk=world.gloria.pk).update(notes="Geändert an der Kasse", updated_at=timezone.now())
    client.post(customer_url("import_job", refused.pk), {"sharing": "all"})
    clean = upload(client, "clean.csv", [["E-Mail", "Vorname"], ["clara@example.com", "Clara"]])
    client.post(customer_url("import_job", clean.pk), {"sharing": "all"})
    return types.SimpleNamespace(mapping=mapping, preview=preview, refused=refused, clean=clean)


def import_rollback_url(world, client):
    """The rollback page of the first confirmed import (which created Clara; the page is rendered
    once per language, and the same import again changes nobody)."""
    import_jobs(world, client)
    world.data |= {"Clara", "clara@example.com", "clean.csv"}
    return customer_url("import_rollback", ImportJob.objects.filter(batch__isnull=False).order_by("pk").first().batch.pk)


def history_with_entries(world, client):
    """The customer database's history after imports, an edit, a consent and an export."""
    import_jobs(world, client)
    client.get(customer_url("list") + "?q=glo&export=csv")
    world.data |= {"Clara", "Nora", "clara@example.com", "clean.csv", "refused.csv", "customers.csv"}
    world.data |= {job.file_name for job in ExportJob.objects.all()}
    return reverse("wagtail_clientdb:history")


def vip_segment(world):
    """A segment of the company: the VIP customers of Alpha, and a dynamic group that follows it."""
    from wagtail_clientdb.models import Segment

    segment, _created = Segment.objects.get_or_create(
        name="Stammkundschaft Alpha", defaults={"query": f"groups={world.vip.pk}&ordering=name", "owner": world.manager, "visibility": "company"}
    )
    CustomerGroup.objects.get_or_create(name="Dynamisch", defaults={"segment": segment})
    world.data |= {"Stammkundschaft Alpha", "Dynamisch"}
    return segment


def archived_gloria(world, client):
    from wagtail_clientdb import archive

    archive.archive(scope.Viewer(world.manager, True), [world.gloria])
    return customer_url("inspect", world.gloria.pk)


def failed_import(world, client):
    """An import whose background task found its file gone (deleted after the retention period)."""
    job = upload(client, "clean.csv", [["E-Mail", "Vorname"], ["clara@example.com", "Clara"]])
    job.file.delete()
    tasks.run_import_job.call(job.pk, False)
    return customer_url("import_job", job.pk)


def export_job(world, user, status):
    """A background export of ``user``'s: still being written, ready, or failed in its task."""
    job = ExportJob.objects.create(created_by=user, branch=None if user == world.manager else world.alpha, format="xlsx")
    if status == "exported":
        tasks.run_export_job.call(job.pk)
    elif status == "failed":
        with mock.patch("wagtail_clientdb.export.write_file", side_effect=OSError("disk full")):
            tasks.run_export_job.call(job.pk)
    job.refresh_from_db()
    assert job.status == status
    return job


# --- The pages --------------------------------------------------------------------------------------


def snippet(model, name, *args):
    return reverse(f"wagtailsnippets_wagtail_clientdb_{model}:{name}", args=args)


def bulk(model, action, *objects):
    return reverse("wagtail_bulk_action", args=("wagtail_clientdb", model, action)) + "?" + "&".join(f"id={o.pk}" for o in objects)


def tomorrow(world):
    return (timezone.localdate(timezone=world.alpha.zoneinfo) + datetime.timedelta(days=1)).isoformat()


@dataclass
class Page:
    """A page: its user, its URL (``url(world, client)``, which may make what the page shows), and
    for a form sent, its data (``post(world, client, url)``), following redirects if ``follow``."""

    name: str
    user: str  # "manager", "staff" or "visitor"
    url: Callable
    post: Callable | None = None
    follow: bool = False
    status: tuple = (200,)

    def __str__(self):
        return self.name


def gloria_twice(world, client=None):
    """Gloria entered a second time, found by the duplicate scan."""
    from wagtail_clientdb import duplicates

    make_customer(first_name="Gloria", last_name="Globall", email="gloria@example.com", shared_with_all_branches=True)
    world.data |= {"Gloria Globall", "Globall"}
    duplicates.scan()
    return snippet("duplicatepair", "list")


def import_with_possible_duplicate(world, client):
    job = upload(client, "twins.csv", [["Vorname", "Nachname", "Telefon"], ["Gloria", "Globall", "+43 660 1234567"]])
    world.data |= {"twins.csv", "Gloria Globall", "Globall"}
    return customer_url("import_job", job.pk)


def workbook_import(world, client, sheets):
    """An import of an XLSX workbook of ``sheets``, ``(title, rows, state)`` each: its pages name
    the sheet read and the other visible ones."""
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("kunden.xlsx", xlsx_sheets_bytes(sheets))})
    assert response.status_code == 302, response.content.decode()[:2000]
    world.data |= {"kunden.xlsx"}
    return ImportJob.objects.filter(created_by=response.wsgi_request.user).latest("pk")


#: The list on the second tab, behind a hidden one, with unknown columns; two other sheets.
UNKNOWN_COLUMNS_BEHIND_A_HIDDEN_SHEET = [
    ("Alt", [IMPORT_HEADER], "hidden"),
    ("Kunden", [["Kundennr", "Kasse", "Farbe"], ["4711", "Kasse 1", "rot"]], "visible"),
    ("Notizen", [["Notiz"]], "visible"),
    ("Archiv", [["Notiz"]], "visible"),
]
#: A list with known columns, and one other sheet.
CUSTOMERS_AND_NOTES = [("Kunden", [IMPORT_HEADER, *IMPORT_ROWS], "visible"), ("Notizen", [["Notiz"]], "visible")]


def job_url(name, which):
    def url(world, client):
        return customer_url(name, getattr(import_jobs(world, client), which).pk)

    return url


def fresh_customer_with_upcoming_appointment(world, client):
    customer = make_customer(first_name="Dora", last_name="Deletia", email="dora@example.com", shared_with_all_branches=True)
    Appointment.objects.create(
        customer=customer, branch=world.alpha, service=world.cut, start=timezone.now() + datetime.timedelta(days=3),
        end=timezone.now() + datetime.timedelta(days=3, minutes=30),
    )
    return customer_url("delete", customer.pk)


def fresh_started_appointment(world, client):
    start = timezone.now() - datetime.timedelta(hours=1)
    appointment = Appointment.objects.create(
        customer=world.gloria, branch=world.alpha, service=world.cut, start=start, end=start + datetime.timedelta(minutes=30)
    )
    return snippet("appointment", "set_status", appointment.pk, "completed")


def bulk_form(data):
    """The data of a bulk action's form, with the time its page was opened, as a browser sends them."""

    def post(world, client, url):
        form = client.get(url).context["form"]
        return {"opened_at": form["opened_at"].value() or "", **data} if "opened_at" in form.fields else data

    return post


def bulk_action_job(world, status):
    """A bulk action of the manager's on many customers, as a background task makes it: waiting,
    done (with a customer changed after the confirmation page and left as it was), or stopped by
    an error (its group deleted before it ran)."""
    failing = status == BulkActionStatus.FAILED
    job = BulkActionJob.objects.create(
        created_by=world.manager, action="add_to_group" if failing else "add_tags",
        options={"group": 0} if failing else {"tags": ["Stapel"]}, opened_at=timezone.now(),
    )
    if status != BulkActionStatus.QUEUED:
        versions.touch([world.gerd.pk])
        tasks.run_bulk_action.call(job.pk)
    job.refresh_from_db()
    assert job.status == status
    return job


CUSTOMER_FILTERS = (
    "&groups={vip}&marketing_consent=true&source=manual&tags={tag}"
    "&attribute_hair_type=fein&attribute_regular=true&attribute_colour=Kupfer&attribute_visits_min=1&attribute_visits_max=20"
    "&attribute_discount_min=0.5&attribute_first_visit_from=2019-01-01&attribute_first_visit_to=2019-12-31"
    "&show_attributes=hair_type&show_attributes=allergies&show_attributes=regular&show_attributes=visits"
    "&show_attributes=discount&show_attributes=colour&show_attributes=first_visit"
)


def filtered_customers(world, client):
    tag = world.gloria.tags.get(name="stammgast").pk
    return customer_url("list") + f"?branch={world.alpha.pk}" + CUSTOMER_FILTERS.format(vip=world.vip.pk, tag=tag)


def fresh_booking(world, hours=72):
    start = timezone.now() + datetime.timedelta(hours=hours)
    return Appointment.objects.create(
        customer=world.lena, branch=world.alpha, service=world.cut, start=start, end=start + datetime.timedelta(minutes=30),
        source="online_booking",
    )


def cancel_url(world, appointment):
    return world.page.url + world.page.reverse_subpage("cancel", args=(booking.cancel_token(appointment),))


def booked_url(world, token):
    return world.page.url + world.page.reverse_subpage("booked", args=(token,))


def dashboard_with_imports(world, client):
    """The manager's recent imports, and a background export and bulk change."""
    import_jobs(world, client)
    export_job(world, world.manager, "exporting")
    bulk_action_job(world, BulkActionStatus.DONE)
    return reverse("wagtailadmin_home")


def read_only_edit_url(world, client):
    """Branches may not edit global customers: the edit URL of one sends staff to its inspect view."""
    ClientDBSettings.objects.update(branches_may_edit_global_customers=False)
    return customer_url("edit", world.gloria.pk)


PAGES = [
    # A branch manager: the whole company.
    Page("dashboard", "manager", dashboard_with_imports),
    Page("customers", "manager", lambda w, c: customer_url("list")),
    Page("customers, filtered, attribute columns", "manager", filtered_customers),
    Page("customers, searched", "manager", lambda w, c: customer_url("list") + "?q=glo"),
    Page("customers, nothing found", "manager", lambda w, c: customer_url("list") + "?q=zzzz"),
    Page("customer inspect", "manager", lambda w, c: customer_url("inspect", w.gloria.pk)),
    Page("customer inspect, local values", "manager", lambda w, c: customer_url("inspect", w.gerd.pk)),
    Page("customer edit", "manager", lambda w, c: customer_url("edit", w.gerd.pk)),
    Page("customer create", "manager", lambda w, c: customer_url("add")),
    Page(
        "customer create, errors",
        "manager",
        lambda w, c: customer_url("add"),
        post=lambda w, c, u: {"sharing": "specific", "phone_raw": "abc"},
    ),
    Page(
        "customer create, possible duplicate",
        "manager",
        lambda w, c: customer_url("add"),
        post=lambda w, c, u: {"first_name": "Gloria", "last_name": "Globalal", "email": "gloria@example.com", "sharing": "all"},
    ),
    Page("possible duplicates", "manager", gloria_twice),
    Page("customer history", "manager", lambda w, c: customer_url("history", w.gloria.pk)),
    Page("online booking block", "manager", lambda w, c: customer_url("booking_block", w.gloria.pk)),
    Page("personal data", "manager", lambda w, c: customer_url("personal_data", w.gerd.pk)),
    Page("merge, side by side", "manager", lambda w, c: customer_url("merge") + f"?id={w.gloria.pk}&id={w.gerd.pk}"),
    Page(
        "customer inspect, blocked from online booking",
        "manager",
        lambda w, c: customer_url("booking_block", w.gerd.pk),
        post=lambda w, c, u: {"reason": "Drei Termine nicht erschienen", "branches": [w.alpha.pk]},
        follow=True,
    ),
    Page("customer delete", "manager", lambda w, c: customer_url("delete", w.gloria.pk)),
    Page("customer deleted, blocked", "manager", fresh_customer_with_upcoming_appointment, post=lambda w, c, u: {}, follow=True),
    Page("customers to delete", "manager", lambda w, c: snippet("deletionrequest", "list")),
    Page(
        "deletion tried again",
        "manager",
        lambda w, c: snippet("deletionrequest", "retry", w.deletion.pk),
        post=lambda w, c, u: {},
        follow=True,
    ),
    Page("appointments", "manager", lambda w, c: snippet("appointment", "list")),
    Page(
        "appointments, past",
        "manager",
        lambda w, c: snippet("appointment", "list") + f"?period=past&status=completed&branch={w.alpha.pk}",
    ),
    Page("appointments, week", "manager", lambda w, c: snippet("appointment", "week") + f"?branch={w.alpha.pk}"),
    Page("appointment create", "manager", lambda w, c: snippet("appointment", "add")),
    Page(
        "appointment create, errors",
        "manager",
        lambda w, c: snippet("appointment", "add"),
        post=lambda w, c, u: {"branch": w.alpha.pk, "service": w.cut.pk, "start": "2020-01-01 10:00", "end": "2020-01-01 09:00"},
    ),
    Page("appointment edit", "manager", lambda w, c: snippet("appointment", "edit", w.today.pk)),
    Page("appointment edit, past", "manager", lambda w, c: snippet("appointment", "edit", w.past.pk)),
    Page("appointment inspect", "manager", lambda w, c: snippet("appointment", "inspect", w.today.pk)),
    Page("appointment status set", "manager", fresh_started_appointment, post=lambda w, c, u: {}, follow=True),
    Page("import upload", "manager", lambda w, c: customer_url("import")),
    Page(
        "import upload, not a spreadsheet",
        "manager",
        lambda w, c: customer_url("import"),
        post=lambda w, c, u: {"file": SimpleUploadedFile("brief.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")},
    ),
    Page("import mapping", "manager", job_url("import_mapping", "mapping")),
    Page(
        "import mapping, errors",
        "manager",
        job_url("import_mapping", "mapping"),
        post=lambda w, c, u: {"column_0": "email", "column_1": "email"},
    ),
    Page("import preview", "manager", job_url("import_job", "preview")),
    Page(
        "import mapping, a workbook of several sheets",
        "manager",
        lambda w, c: customer_url("import_mapping", workbook_import(w, c, UNKNOWN_COLUMNS_BEHIND_A_HIDDEN_SHEET).pk),
    ),
    Page(
        "import preview, a workbook of two sheets",
        "manager",
        lambda w, c: customer_url("import_job", workbook_import(w, c, CUSTOMERS_AND_NOTES).pk),
    ),
    Page("import refused", "manager", job_url("import_job", "refused")),
    Page("import result", "manager", job_url("import_job", "clean")),
    Page("import preview, possible duplicates", "manager", import_with_possible_duplicate),
    Page("import failed", "manager", failed_import),
    Page("import batches", "manager", lambda w, c: import_jobs(w, c) and customer_url("import_batches")),
    Page("import rollback", "manager", import_rollback_url),
    Page("customer database history", "manager", history_with_entries),
    Page("segments", "manager", lambda w, c: vip_segment(w) and snippet("segment", "list")),
    Page("segment edit", "manager", lambda w, c: snippet("segment", "edit", vip_segment(w).pk)),
    Page("segment create from the listing", "manager", lambda w, c: snippet("segment", "add") + f"?query=groups%3D{w.vip.pk}"),
    Page("dynamic group edit", "manager", lambda w, c: vip_segment(w) and snippet("customergroup", "list")),
    Page("customer inspect, archived", "manager", archived_gloria),
    Page("customer archive", "manager", lambda w, c: customer_url("archive", w.lena.pk)),
    Page("customers, visit filters", "manager", lambda w, c: customer_url("list") + "?archived=any&visits_min=1&no_shows=1&birthday=this_month&upcoming_appointment=true&local_values=true"),
    Page("export running", "manager", lambda w, c: customer_url("export_job", export_job(w, w.manager, "exporting").pk)),
    Page("export ready", "manager", lambda w, c: customer_url("export_job", export_job(w, w.manager, "exported").pk)),
    Page("export failed", "manager", lambda w, c: customer_url("export_job", export_job(w, w.manager, "failed").pk)),
    Page("bulk action waiting", "manager", lambda w, c: customer_url("bulk_action_job", bulk_action_job(w, "queued").pk)),
    Page("bulk action done", "manager", lambda w, c: customer_url("bulk_action_job", bulk_action_job(w, "done").pk)),
    Page("bulk action failed", "manager", lambda w, c: customer_url("bulk_action_job", bulk_action_job(w, "failed").pk)),
    Page("groups", "manager", lambda w, c: snippet("customergroup", "list")),
    Page("group edit", "manager", lambda w, c: snippet("customergroup", "edit", w.vip.pk)),
    Page("services", "manager", lambda w, c: snippet("service", "list") + f"?is_active=true&branches={w.alpha.pk}"),
    Page("service edit", "manager", lambda w, c: snippet("service", "edit", w.cut.pk)),
    Page("attributes", "manager", lambda w, c: snippet("attributedefinition", "list") + "?is_active=true&applies_to=customer"),
    Page("attribute create", "manager", lambda w, c: snippet("attributedefinition", "add")),
    Page("attribute edit", "manager", lambda w, c: snippet("attributedefinition", "edit", w.attributes[5].pk)),
    Page("attribute delete", "manager", lambda w, c: snippet("attributedefinition", "delete", w.attributes[5].pk)),
    Page("branches", "manager", lambda w, c: snippet("branch", "list") + "?is_active=true"),
    Page("branch edit", "manager", lambda w, c: snippet("branch", "edit", w.alpha.pk)),
    Page("branch inspect", "manager", lambda w, c: snippet("branch", "inspect", w.alpha.pk)),
    Page(
        "branch delete, in use",
        "manager",
        lambda w, c: snippet("branch", "delete", w.alpha.pk),
        post=lambda w, c, u: {},
        follow=True,
    ),
    Page(
        "company settings",
        "manager",
        lambda w, c: reverse("wagtailsettings:edit", args=("wagtail_clientdb", "clientdbsettings")),
        follow=True,
    ),
    Page("bulk: add tags", "manager", lambda w, c: bulk("customer", "add_tags", w.gloria, w.gerd)),
    Page(
        "bulk: tags added",
        "manager",
        lambda w, c: bulk("customer", "add_tags", w.gloria, w.gerd) + "&next=" + customer_url("list"),
        post=bulk_form({"tags": "neu"}),
        follow=True,
    ),
    Page("bulk: add to group", "manager", lambda w, c: bulk("customer", "add_to_group", w.gloria, w.gerd)),
    Page("bulk: share with branches", "manager", lambda w, c: bulk("customer", "share_with_branches", w.gerd)),
    Page(
        "bulk: share, errors",
        "manager",
        lambda w, c: bulk("customer", "share_with_branches", w.gloria, w.gerd),
        post=bulk_form({"sharing": "specific"}),
    ),
    Page("bulk: delete customers", "manager", lambda w, c: bulk("customer", "delete", w.gloria, w.gerd)),
    Page("bulk: appointment status", "manager", lambda w, c: bulk("appointment", "change_status", w.today, w.past)),
    Page("bulk: delete attributes", "manager", lambda w, c: bulk("attributedefinition", "delete", w.attributes[0])),
    # Branch staff: their branch.
    Page("staff: dashboard", "staff", lambda w, c: reverse("wagtailadmin_home")),
    Page("staff: customers", "staff", lambda w, c: customer_url("list")),
    Page("staff: inspect, local values", "staff", lambda w, c: customer_url("inspect", w.gerd.pk)),
    Page(
        "staff: edit a read-only customer",
        "staff",
        read_only_edit_url,
        follow=True,
    ),
    Page("staff: edit a shared customer", "staff", lambda w, c: customer_url("edit", w.gerd.pk)),
    Page("staff: edit a local customer", "staff", lambda w, c: customer_url("edit", w.lena.pk)),
    Page("staff: create", "staff", lambda w, c: customer_url("add")),
    Page("staff: delete a local customer", "staff", lambda w, c: customer_url("delete", w.lena.pk)),
    Page("staff: customers to delete", "staff", lambda w, c: snippet("deletionrequest", "list")),
    Page("staff: possible duplicates", "staff", gloria_twice),
    Page("staff: appointments", "staff", lambda w, c: snippet("appointment", "list")),
    Page("staff: appointments, week", "staff", lambda w, c: snippet("appointment", "week")),
    Page("staff: appointment create", "staff", lambda w, c: snippet("appointment", "add")),
    Page("staff: import upload", "staff", lambda w, c: customer_url("import")),
    Page("staff: import preview", "staff", job_url("import_job", "preview")),
    Page("staff: bulk add tags", "staff", lambda w, c: bulk("customer", "add_tags", w.gloria, w.lena)),
    # The public booking page.
    Page("booking page", "visitor", lambda w, c: w.page.url),
    Page("booking page, free times", "visitor", lambda w, c: w.page.url + f"?service={w.cut.pk}&date={tomorrow(w)}"),
    Page(
        "booking page, errors",
        "visitor",
        lambda w, c: w.page.url,
        post=lambda w, c, u: {"service": w.cut.pk, "date": tomorrow(w), "token": "t", "email": "x", "phone": "abc"},
        status=(400,),
    ),
    Page("booking page, booked", "visitor", lambda w, c: booked_url(w, booked_token(w.upcoming))),
    Page("booking page, cancel", "visitor", lambda w, c: cancel_url(w, w.upcoming)),
    Page("booking page, cancelled", "visitor", lambda w, c: cancel_url(w, fresh_booking(w)), post=lambda w, c, u: {}),
    Page("booking page, too late to cancel", "visitor", lambda w, c: cancel_url(w, fresh_booking(w, hours=2)), status=(409,)),
    Page("booking page, unknown link", "visitor", lambda w, c: booked_url(w, "nonsense"), status=(404,)),
]


def render(world, client, page, language):
    """The page as its user sees it in ``language``."""
    headers = {}
    if page.user == "visitor":
        client.logout()
        headers["HTTP_ACCEPT_LANGUAGE"] = language
    else:
        user = world.manager if page.user == "manager" else world.staff
        set_language(user, language)
        client.force_login(user)
    url = page.url(world, client)
    if page.post:
        response = client.post(url, page.post(world, client, url), follow=page.follow, **headers)
    else:
        response = client.get(url, follow=page.follow, **headers)
    assert response.status_code in page.status, f"{page.name} ({language}): {url} answered {response.status_code}"
    content = response.content.decode()
    if folder := os.environ.get("CLIENTDB_DUMP_PAGES"):  # to look at the pages: a folder to write them to
        name = re.sub(r"\W+", "-", page.name)
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.{language}.html").write_text(content, encoding="utf-8")
    return content


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_every_string_is_german_and_french(world, client, page):
    english = render(world, client, page, "en")
    problems = []
    for language in LANGUAGES:
        found = untranslated(world, english, render(world, client, page, language), language)
        problems += [f"  [{language}] {text}" for text in found]
    assert not problems, f"{page.name}: English left in the {'/'.join(LANGUAGES)} page:\n" + "\n".join(problems)


def book_online(world, client, language, slot):
    """Book the ``slot``-th free time of tomorrow on the booking page, as a visitor speaking
    ``language``; the confirmation email goes out when the booking is committed."""
    query = {"service": world.cut.pk, "date": tomorrow(world)}
    form = client.get(world.page.url, query, HTTP_ACCEPT_LANGUAGE=language).context["form"]
    data = {
        **query,
        "token": form["token"].value(),
        "start": form.fields["start"].choices[slot][0],
        "first_name": "Nora",
        "last_name": "Neukundin",
        "email": f"nora-{language}@example.com",
        "phone": "+49 170 5550001",
        "attr__wish": "Kurz",
    }
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(world.page.url, data, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 302, response.content.decode()[:3000]
    return mail.outbox[-1]


def as_page(email):
    """An email as a page of one paragraph per line, to be read as pages are."""
    lines = [email.subject, *email.body.splitlines()]
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def test_the_booking_confirmation_email_is_german_and_french(world, client):
    world.data |= {"Nora", "Neukundin", "Nora Neukundin"}
    english = as_page(book_online(world, client, "en", 0))
    problems = []
    for slot, language in enumerate(LANGUAGES, start=1):
        found = untranslated(world, english, as_page(book_online(world, client, language, slot)), language)
        problems += [f"  [{language}] {text}" for text in found]
    assert not problems, "The booking confirmation email: English left:\n" + "\n".join(problems)


def test_the_catalogs_translate_every_msgid():
    for language, entries in CATALOGS.items():
        missing = [msgid for msgid, msgstr in entries.items() if not msgstr]
        assert not missing, f"{language}: not translated: {missing}"
        fuzzy = (LOCALE_DIR / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8").count("#, fuzzy")
        assert not fuzzy, f"{language}: {fuzzy} fuzzy entries"
