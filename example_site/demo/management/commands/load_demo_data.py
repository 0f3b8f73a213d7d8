"""Demo data of the example site: a hair-salon chain with four branches.

Run after ``migrate``; a second run finds the data and changes nothing. A fixed random
seed makes every run create the same customers. Appointment dates are relative to today,
so the demo always has upcoming bookings. ``--language de`` writes the business's own words
(groups, segments, services, attributes, notes, tags, pages) in German and sets the demo users' admin
language to German; the default follows the project's LANGUAGE_CODE.
"""

import datetime
import random
import string
import time
import unicodedata
from typing import NamedTuple

import phonenumbers
from django.contrib.auth import get_user_model
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from wagtail.models import Page, Site
from wagtail.users.models import UserProfile

from wagtail_clientdb import booking_counts, roles
from wagtail_clientdb.roles import MANAGER_GROUP, STAFF_GROUP
from wagtail_clientdb.consent import record_consent
from wagtail_clientdb.models import (
    Appointment,
    AppointmentSource,
    AppointmentStatus,
    AttributeDefinition,
    AttributeTarget,
    AttributeType,
    Branch,
    BookingPage,
    BranchMembership,
    ClientDBSettings,
    ConsentChannel,
    Customer,
    CustomerGroup,
    CustomerSource,
    OpeningHours,
    Segment,
    SegmentVisibility,
    Service,
)
from wagtail_clientdb.overrides import save_local_values

SEED = 20250601
CUSTOMER_COUNT = 300

# slug, name, address
BRANCHES = [
    ("mitte", "Berlin Mitte", "Torstraße 112\n10119 Berlin"),
    ("altona", "Hamburg Altona", "Ottenser Hauptstraße 27\n22765 Hamburg"),
    ("schwabing", "München Schwabing", "Leopoldstraße 58\n80802 München"),
    ("ehrenfeld", "Köln Ehrenfeld", "Venloer Straße 341\n50823 Köln"),
]



class DemoUser(NamedTuple):
    username: str  # also the password
    first_name: str
    last_name: str
    role: str
    group: str | None  # None for the superuser
    branches: tuple
    sees: str


USERS = [
    DemoUser("admin", "Ada", "Admin", "superuser", None, (), "everything, including users and settings"),
    DemoUser(
        "manager", "Sabine", "Keller", "branch manager", MANAGER_GROUP, (),
        "all customers company-wide; shares customers, edits Settings → Client DB",
    ),
    DemoUser(
        "mitte", "Jürgen", "Becker", "staff, Berlin Mitte", STAFF_GROUP, ("mitte",),
        "customers shared with Mitte or all branches, and Mitte's local ones",
    ),
    DemoUser(
        "altona", "Aylin", "Özdemir", "staff, Hamburg Altona", STAFF_GROUP, ("altona",),
        "customers shared with Altona or all branches, and Altona's local ones",
    ),
    DemoUser(
        "both", "Lena", "Schäfer", "staff, Mitte + Altona", STAFF_GROUP, ("mitte", "altona"),
        "one branch at a time; the branch switcher changes it",
    ),
]

LANGUAGES = ("en", "de")

# key: name, description, is_default
CUSTOMER_GROUPS = {
    "en": {
        "online": ("Online bookings", "Customers whose first visit was booked online.", True),
        "vip": ("VIP", "Regulars with priority booking.", False),
        "students": ("Students", "Student discount with a valid student ID.", False),
        "newsletter": ("Newsletter", "Receive the monthly newsletter.", False),
    },
    "de": {
        "online": ("Online-Buchungen", "Kunden, deren erster Besuch online gebucht wurde.", True),
        "vip": ("VIP", "Stammkunden mit bevorzugter Terminvergabe.", False),
        "students": ("Studierende", "Studentenrabatt mit gültigem Studierendenausweis.", False),
        "newsletter": ("Newsletter", "Erhalten den monatlichen Newsletter.", False),
    },
}

# Saved filters: key: name per language, the listing's query, shared with (None: the company;
# a branch's slug; "private": the head office's own).
SEGMENTS = {
    "regulars": ({"en": "Regulars (3 visits or more)", "de": "Stammkunden (ab 3 Besuchen)"}, "visits_min=3", None),
    "birthdays": ({"en": "Birthdays this month", "de": "Geburtstag diesen Monat"}, "birthday=this_month", None),
    "consent": ({"en": "Marketing consent", "de": "Mit Werbeeinwilligung"}, "marketing_consent=true", None),
    "booked": ({"en": "Has an upcoming appointment", "de": "Mit anstehendem Termin"}, "upcoming_appointment=true", "mitte"),
    "no_shows": ({"en": "Missed an appointment", "de": "Termin versäumt"}, "no_shows=1&ordering=-created_at", "private"),
}
# A dynamic group: its members are whoever meets its segment's rule.
DYNAMIC_GROUP = ("regulars", {"en": "Regulars", "de": "Stammkunden"}, {
    "en": "Everyone with three visits or more, as the branch shown counts them.",
    "de": "Alle mit mindestens drei Besuchen, wie die gezeigte Filiale sie zählt.",
})

HAIR_TYPES = {"en": ["fine", "normal", "thick", "curly"], "de": ["fein", "normal", "kräftig", "lockig"]}
REFERRALS = {"en": ["friend", "instagram", "walk-in", "google"], "de": ["Empfehlung", "Instagram", "Laufkundschaft", "Google"]}
VISIT_REASONS = {
    "en": ["regular trim", "new look", "special occasion", "colour correction"],
    "de": ["Nachschneiden", "neuer Look", "besonderer Anlass", "Farbkorrektur"],
}

# The attributes' words in German, by key (the keys stay the same in every language).
ATTRIBUTE_WORDS_DE = {
    "hair_type": {"label": "Haartyp"},
    "customer_number": {
        "label": "Kundennummer", "regex_error_message": "Kundennummern sehen so aus: K-12345.",
        "help_text": "Die Nummer auf der Treuekarte.",
    },
    "allergies": {"label": "Allergien", "help_text": "Alles, was vor dem Färben bekannt sein muss."},
    "referral": {"label": "Aufmerksam geworden durch", "help_text": "Wie der Kunde uns gefunden hat."},
    "patch_test": {"label": "Letzter Allergietest", "help_text": "Vor dem Färben nötig; sechs Monate gültig."},
    "quiet_appointment": {"label": "Wünscht einen ruhigen Termin"},
    "colour_formula": {"label": "Farbrezeptur"},
    "reason": {"label": "Anlass des Besuchs"},
    "processing_minutes": {"label": "Einwirkzeit (Minuten)"},
    "retail_sale": {"label": "Verkaufte Produkte (EUR)"},
}

ATTRIBUTES = [
    {
        "applies_to": AttributeTarget.CUSTOMER, "key": "hair_type", "label": "Hair type",
        "field_type": AttributeType.CHOICE, "choices": HAIR_TYPES, "show_in_booking_form": True,
    },
    {
        "applies_to": AttributeTarget.CUSTOMER, "key": "customer_number", "label": "Customer number",
        "field_type": AttributeType.TEXT, "regex": r"^K-\d{4,6}$",
        "regex_error_message": "Customer numbers look like K-12345.",
        "help_text": "The number on the loyalty card.",
    },
    {
        "applies_to": AttributeTarget.CUSTOMER, "key": "allergies", "label": "Allergies",
        "field_type": AttributeType.TEXTAREA, "help_text": "Anything the stylist must know before colouring.",
    },
    {
        "applies_to": AttributeTarget.CUSTOMER, "key": "referral", "label": "Referral",
        "field_type": AttributeType.CHOICE, "choices": REFERRALS, "show_in_booking_form": True,
        "help_text": "How the customer found us.",
    },
    {
        "applies_to": AttributeTarget.CUSTOMER, "key": "patch_test", "label": "Last skin patch test",
        "field_type": AttributeType.DATE, "help_text": "Needed before colouring; valid for six months.",
    },
    {
        "applies_to": AttributeTarget.CUSTOMER, "key": "quiet_appointment", "label": "Prefers a quiet appointment",
        "field_type": AttributeType.BOOLEAN,
    },
    {
        "applies_to": AttributeTarget.BOOKING, "key": "colour_formula", "label": "Colour formula",
        "field_type": AttributeType.TEXT,
    },
    {
        "applies_to": AttributeTarget.BOOKING, "key": "reason", "label": "Reason for visit",
        "field_type": AttributeType.CHOICE, "choices": VISIT_REASONS, "show_in_booking_form": True,
    },
    {
        "applies_to": AttributeTarget.BOOKING, "key": "processing_minutes", "label": "Processing time (minutes)",
        "field_type": AttributeType.INTEGER,
    },
    {
        "applies_to": AttributeTarget.BOOKING, "key": "retail_sale", "label": "Products sold (EUR)",
        "field_type": AttributeType.DECIMAL,
    },
]



def attribute_definitions(language):
    """The attribute definitions in ``language``: choices and words translated, keys kept."""
    for definition in ATTRIBUTES:
        definition = {**definition, "choices": definition.get("choices", {}).get(language, [])}
        if language == "de":
            definition.update(ATTRIBUTE_WORDS_DE[definition["key"]])
        yield definition


FIRST_NAMES = [
    "Anna", "Jürgen", "Sören", "Jörg", "Björn", "Käthe", "Günter", "Lea", "Mia", "Emma", "Hannah", "Sophie",
    "Lena", "Marie", "Laura", "Julia", "Sarah", "Katrin", "Petra", "Sabine", "Ute", "Renate", "Lukas", "Leon",
    "Finn", "Jonas", "Paul", "Felix", "Maximilian", "Tobias", "Stefan", "Thomas", "Michael", "Andreas", "Ömer",
    "Aylin", "Elif", "Mehmet", "Can", "Zoë", "Chloé", "Malte", "Jens", "Heike", "Dörte", "Frieda", "Fynn",
    "Ole", "Nele", "Ida", "Greta", "Uwe", "Agnieszka", "Luca", "Timo",
]
LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
    "Braun", "Krüger", "Hartmann", "Lange", "Werner", "Krause", "Köhler", "Böhm", "Weiß", "Groß", "Jäger",
    "Günther", "Lehmann", "Özdemir", "Yılmaz", "Kaya", "Demir", "Şahin", "Öztürk", "Nowak", "Kowalski",
    "Nguyen", "Rossi", "Meißner", "Voß",
]
EMAIL_DOMAINS = ["example.com", "example.de", "example.org", "example.net"]
# Mobile prefixes; 015x numbers have 8 digits after the prefix, 016x/017x 7 or 8.
MOBILE_PREFIXES = ["151", "152", "157", "160", "162", "170", "171", "172", "173", "174", "175", "176", "177", "179"]
PHONE_FORMATS = [
    "+49 {prefix} {number}", "0{prefix} {number}", "0{prefix}/{number}", "0049 {prefix} {number}",
    "+49{prefix}{number}", "(0{prefix}) {number}", "0{prefix}-{number}",
]
UNREADABLE_PHONES = ["ask at desk", "see old card", "n/a"]
TAGS = {
    "en": ["blonde", "regular", "colour", "kids", "sensitive scalp", "late-payer"],
    "de": ["blond", "Stammkunde", "Farbe", "Kinder", "empfindliche Kopfhaut", "zahlt spät"],
}
CUSTOMER_NOTES = {
    "en": [
        "Prefers Saturday mornings.",
        "Likes a strong coffee while waiting.",
        "Always books together with her sister.",
        "Sensitive to strong fragrances.",
        "Wants the same cut as last time, no experiments.",
    ],
    "de": [
        "Kommt am liebsten samstagvormittags.",
        "Trinkt beim Warten gern einen starken Kaffee.",
        "Bucht immer zusammen mit ihrer Schwester.",
        "Empfindlich gegen starke Düfte.",
        "Möchte denselben Schnitt wie letztes Mal, keine Experimente.",
    ],
}
ALLERGIES = {
    "en": ["PPD (hair dye)", "Latex gloves", "Nickel", "Fragrances in styling products"],
    "de": ["PPD (Haarfarbe)", "Latexhandschuhe", "Nickel", "Duftstoffe in Stylingprodukten"],
}
SOURCE_WEIGHTS = {
    CustomerSource.MANUAL: 40,
    CustomerSource.IMPORT: 30,
    CustomerSource.ONLINE_BOOKING: 20,
    CustomerSource.API: 10,
}

# key: minutes, English name, German name
SERVICES = {
    "cut": (60, "Cut & blow-dry", "Schneiden & Föhnen"),
    "mens_cut": (30, "Men's cut", "Herrenschnitt"),
    "beard": (30, "Beard trim", "Bart trimmen"),
    "kids_cut": (30, "Kids' cut", "Kinderschnitt"),
    "blow_dry": (45, "Blow-dry", "Föhnen"),
    "colour": (120, "Colour", "Färben"),
    "highlights": (150, "Highlights", "Strähnchen"),
}
COLOUR_SERVICES = {"colour", "highlights"}
COLOUR_SHADES = ["5/66", "6/0", "7/1", "8/3", "9/13"]
OXIDANTS = ["6%", "9%"]
APPOINTMENT_SOURCE_WEIGHTS = {
    AppointmentSource.MANUAL: 50,
    AppointmentSource.ONLINE_BOOKING: 35,
    AppointmentSource.IMPORT: 10,
    AppointmentSource.API: 5,
}
PAST_STATUS_WEIGHTS = {
    AppointmentStatus.COMPLETED: 85,
    AppointmentStatus.CANCELLED: 10,
    AppointmentStatus.NO_SHOW: 5,
}
APPOINTMENT_NOTES = {
    "en": ["Running 10 minutes late, called ahead.", "Bring the colour chart.", "Paid by card."],
    "de": ["Kommt 10 Minuten später, hat angerufen.", "Farbkarte bereitlegen.", "Mit Karte bezahlt."],
}
OXIDANT_WORD = {"en": "oxidant", "de": "Oxidationsmittel"}
OPENS, CLOSES = 9, 18
#: Chairs per salon: how many appointments at once.
PARALLEL_BOOKINGS = 3

# branch slug, local note (en, de): what a branch keeps for itself about a shared customer
LOCAL_VALUES = [
    ("mitte", "Mitte: books with Jürgen only.", "Mitte: bucht nur bei Jürgen."),
    ("mitte", "Mitte: new mobile number given at the desk.", "Mitte: neue Handynummer am Empfang angegeben."),
    ("altona", "Altona: parks in the courtyard, give them the gate code.", "Altona: parkt im Hof, Torcode mitgeben."),
    ("altona", "Altona: prefers the window seat.", "Altona: sitzt am liebsten am Fenster."),
    ("mitte", "Mitte: pays the invoice monthly.", "Mitte: zahlt die Rechnung monatlich."),
]

PAGES = {
    "en": {
        "intro": "<p>Four salons, one team. Book your next appointment online.</p>",
        "booking_title": "Book in {branch}",
        "booking_intro": "<p>Choose a service and a time; we look forward to seeing you.</p>",
    },
    "de": {
        "intro": "<p>Vier Salons, ein Team. Buchen Sie Ihren nächsten Termin online.</p>",
        "booking_title": "Termin in {branch} buchen",
        "booking_intro": "<p>Wählen Sie eine Leistung und eine Uhrzeit – wir freuen uns auf Sie.</p>",
    },
}

# German spelling for the umlauts; other accents are dropped.
EMAIL_SPELLING = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i"})


def pick(rng, weights):
    """One key of ``weights`` (key → relative weight)."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def mailbox_name(name):
    spelled = unicodedata.normalize("NFKD", name.lower().translate(EMAIL_SPELLING))
    return spelled.encode("ascii", "ignore").decode().replace(" ", "")


def email_address(rng, first_name, last_name):
    first, last = mailbox_name(first_name), mailbox_name(last_name)
    mailbox = rng.choice(
        [f"{first}.{last}", f"{first[0]}.{last}", f"{first}{last}{rng.randint(1, 99)}", f"{last}.{first}"]
    )
    return f"{mailbox}@{rng.choice(EMAIL_DOMAINS)}"


def mobile_number(rng):
    """A valid German mobile number, typed the way customers do."""
    while True:
        prefix = rng.choice(MOBILE_PREFIXES)
        number = "".join(rng.choices(string.digits, k=rng.choice((7, 8))))
        if phonenumbers.is_valid_number(phonenumbers.parse(f"0{prefix}{number}", "DE")):
            return rng.choice(PHONE_FORMATS).format(prefix=prefix, number=number)


def phone_as_typed(rng):
    """Mostly valid mobile numbers; some customers gave none, a few something unreadable."""
    kind = rng.choices(["mobile", "none", "unreadable"], weights=[83, 15, 2])[0]
    if kind == "mobile":
        return mobile_number(rng)
    if kind == "unreadable":
        return rng.choice(UNREADABLE_PHONES)
    return ""


def random_date(rng, first, last):
    return first + datetime.timedelta(days=rng.randint(0, (last - first).days))


def salon_day(today, days_from_today):
    """A day ``days_from_today`` away, moved off Sunday, when the salons are closed."""
    day = today + datetime.timedelta(days=days_from_today)
    if day.weekday() == 6:
        day += datetime.timedelta(days=1 if days_from_today > 0 else -1)
    return day


def slot(rng, day, minutes, branch):
    """Start and end of an appointment within the branch's opening hours."""
    start_minute = rng.randrange(OPENS * 60, CLOSES * 60 - minutes + 1, 15)
    start = datetime.datetime.combine(day, datetime.time(start_minute // 60, start_minute % 60), tzinfo=branch.zoneinfo)
    return start, start + datetime.timedelta(minutes=minutes)


class Command(BaseCommand):
    help = "Load the demo data of the example site (skipped when it is already there)."

    def add_arguments(self, parser):
        default = settings.LANGUAGE_CODE.split("-")[0]
        parser.add_argument(
            "--language", choices=LANGUAGES, default=default if default in LANGUAGES else "en",
            help="Language of the demo's own words and of the demo users' admin (default: the project's LANGUAGE_CODE).",
        )

    def handle(self, *args, **options):
        if Branch.objects.filter(slug="mitte").exists():
            self.stdout.write("Demo data already loaded; nothing to do.")
            return
        self.language = options["language"]
        started = time.monotonic()
        self.load(random.Random(SEED))
        seconds = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {seconds:.1f} s."))
        self.print_logins()

    # All or nothing, so that a failed run can simply be run again.
    @transaction.atomic
    def load(self, rng):
        branches = {
            slug: Branch.objects.create(
                slug=slug, name=name, address=address, timezone="Europe/Berlin", parallel_bookings=PARALLEL_BOOKINGS
            )
            for slug, name, address in BRANCHES
        }
        for branch in branches.values():
            OpeningHours.objects.bulk_create(
                OpeningHours(branch=branch, weekday=weekday, opens=datetime.time(OPENS), closes=datetime.time(CLOSES))
                for weekday in range(6)  # closed on Sundays
            )
        services = {
            key: Service.objects.create(name=english if self.language == "en" else german, duration=minutes)
            for key, (minutes, english, german) in SERVICES.items()
        }
        for service in services.values():
            service.branches.set(branches.values())
        self.create_pages(branches)
        staff_by_branch = self.create_users(branches)
        customer_groups = {
            key: CustomerGroup.objects.create(name=name, description=description, is_default=is_default)
            for key, (name, description, is_default) in CUSTOMER_GROUPS[self.language].items()
        }
        for order, definition in enumerate(attribute_definitions(self.language)):
            AttributeDefinition.objects.create(sort_order=order, **definition)
        customers = [
            self.create_customer(rng, list(branches.values()), customer_groups) for _ in range(CUSTOMER_COUNT)
        ]
        appointments = [
            appointment
            for customer, visited_branches in customers
            for appointment in self.appointments(rng, customer, visited_branches, staff_by_branch, services)
        ]
        Appointment.objects.bulk_create(appointments)
        booking_counts.recount_all()  # bulk_create sends no signals
        self.create_local_values(rng, [c for c, _ in customers if c.shared_with_all_branches], branches)
        self.create_segments(branches)
        self.stdout.write(
            f"Created {len(branches)} branches, {len(customers)} customers and {len(appointments)} appointments."
        )

    def create_segments(self, branches):
        """Saved filters of the head office and of Mitte's staff, and a dynamic group."""
        User = get_user_model()
        manager, mitte = User.objects.get(username="manager"), User.objects.get(username="mitte")
        segments = {}
        for key, (names, query, shared_with) in SEGMENTS.items():
            if shared_with is None:
                sharing = {"owner": manager, "visibility": SegmentVisibility.COMPANY}
            elif shared_with == "private":
                sharing = {"owner": manager, "visibility": SegmentVisibility.PRIVATE}
            else:
                sharing = {"owner": mitte, "visibility": SegmentVisibility.BRANCH, "branch": branches[shared_with]}
            segments[key] = Segment.objects.create(name=names[self.language], query=query, **sharing)
        key, names, descriptions = DYNAMIC_GROUP
        CustomerGroup.objects.create(name=names[self.language], description=descriptions[self.language], segment=segments[key])

    def create_pages(self, branches):
        """A home page in place of Wagtail's welcome page, with a booking page per branch."""
        # Imported here: the browser tests load the rest of the demo data without this app
        # (tests/browser/test_screenshots.py).
        from demo.models import HomePage

        site = Site.objects.get(is_default_site=True)
        welcome = site.root_page
        home = Page.get_first_root_node().add_child(
            instance=HomePage(
                title="Salon Schnitt & Co",
                slug="salon",
                intro=PAGES[self.language]["intro"],
            )
        )
        site.root_page = home
        site.save()
        welcome.delete()
        for slug, branch in branches.items():
            home.add_child(
                instance=BookingPage(
                    title=PAGES[self.language]["booking_title"].format(branch=branch.name),
                    slug=slug,
                    branch=branch,
                    intro=PAGES[self.language]["booking_intro"],
                    confirmation_text=f"<p>{branch.name}, {branch.address.replace(chr(10), ', ')}.</p>",
                )
            )

    def create_users(self, branches):
        """The demo logins; returns the staff members of each branch."""
        groups = {name: group for name, (group, _added) in roles.set_up_groups().items()}
        User = get_user_model()
        staff_by_branch = {branch: [] for branch in branches.values()}
        for demo_user in USERS:
            fields = {
                "username": demo_user.username,
                "password": demo_user.username,
                "email": f"{demo_user.username}@example.com",
                "first_name": demo_user.first_name,
                "last_name": demo_user.last_name,
            }
            if demo_user.group is None:
                user = User.objects.create_superuser(**fields)
            else:
                user = User.objects.create_user(**fields)
            profile = UserProfile.get_for_user(user)
            profile.preferred_language = self.language
            profile.save()
            if demo_user.group is None:
                continue
            user.groups.add(groups[demo_user.group])
            for slug in demo_user.branches:
                BranchMembership.objects.create(user=user, branch=branches[slug])
                staff_by_branch[branches[slug]].append(user)
        return staff_by_branch

    def create_customer(self, rng, branches, customer_groups):
        """A customer and the branches where they book appointments."""
        first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        scope = rng.choices(["all branches", "some branches", "local"], weights=[40, 20, 40])[0]
        home_branch = rng.choice(branches) if scope == "local" else None
        source = pick(rng, SOURCE_WEIGHTS)
        birthday = None
        if rng.random() < 0.4:
            birthday = random_date(rng, datetime.date(1950, 1, 1), datetime.date(2010, 12, 31))
        customer = Customer.objects.create(
            first_name=first_name,
            last_name=last_name,
            email=email_address(rng, first_name, last_name) if rng.random() < 0.9 else "",
            phone_raw=phone_as_typed(rng),
            birthday=birthday,
            notes=rng.choice(CUSTOMER_NOTES[self.language]) if rng.random() < 0.15 else "",
            attributes=self.customer_attributes(rng),
            source=source,
            home_branch=home_branch,
            shared_with_all_branches=scope == "all branches",
        )
        # Customers joined before their first (past) appointment, up to 540 days ago.
        joined = timezone.now() - datetime.timedelta(days=rng.randint(545, 1500))
        Customer.objects.filter(pk=customer.pk).update(created_at=joined, updated_at=joined)
        if scope == "some branches":
            visited_branches = rng.sample(branches, rng.choice((1, 2)))
            customer.branches.set(visited_branches)
        else:
            visited_branches = [home_branch] if home_branch else branches

        gives_consent = rng.random() < 0.5
        if gives_consent:
            record_consent(customer, True, ConsentChannel.IMPORT)
        groups = [key for key, share in (("vip", 0.08), ("students", 0.1)) if rng.random() < share]
        if source == CustomerSource.ONLINE_BOOKING:
            groups.append("online")
        if gives_consent and rng.random() < 0.6:
            groups.append("newsletter")
        customer.groups.set(customer_groups[key] for key in groups)
        tags = rng.sample(TAGS[self.language], rng.choices((0, 1, 2), weights=(50, 35, 15))[0])
        if tags:
            customer.tags.add(*tags)
        return customer, visited_branches

    def customer_attributes(self, rng):
        """Attribute values in their stored form: strings, ISO dates, booleans."""
        attributes = {}
        if rng.random() < 0.7:
            attributes["hair_type"] = rng.choice(HAIR_TYPES[self.language])
        if rng.random() < 0.6:
            attributes["customer_number"] = f"K-{rng.randint(1000, 999999)}"
        if rng.random() < 0.08:
            attributes["allergies"] = rng.choice(ALLERGIES[self.language])
        if rng.random() < 0.5:
            attributes["referral"] = rng.choice(REFERRALS[self.language])
        if rng.random() < 0.25:
            today = timezone.localdate()
            attributes["patch_test"] = random_date(rng, today - datetime.timedelta(days=365), today).isoformat()
        if rng.random() < 0.2:
            attributes["quiet_appointment"] = rng.random() < 0.7
        return attributes

    def appointments(self, rng, customer, visited_branches, staff_by_branch, services):
        """0–8 appointments, mostly in the customer's usual branch."""
        today = timezone.localdate()
        usual_branch = rng.choice(visited_branches)
        count = rng.choices(range(9), weights=(15, 15, 15, 15, 12, 10, 8, 6, 4))[0]
        for _ in range(count):
            branch = usual_branch if rng.random() < 0.8 else rng.choice(visited_branches)
            service = rng.choice(list(SERVICES))
            if rng.random() < 0.15:
                day, status = salon_day(today, rng.randint(1, 30)), AppointmentStatus.BOOKED
            else:
                day, status = salon_day(today, -rng.randint(1, 540)), pick(rng, PAST_STATUS_WEIGHTS)
            start, end = slot(rng, day, SERVICES[service][0], branch)
            yield Appointment(
                customer=customer,
                branch=branch,
                start=start,
                end=end,
                service=services[service],
                staff=rng.choice([*staff_by_branch[branch], None]),
                status=status,
                source=pick(rng, APPOINTMENT_SOURCE_WEIGHTS),
                attributes=self.booking_attributes(rng, service, status),
                notes=rng.choice(APPOINTMENT_NOTES[self.language]) if rng.random() < 0.1 else "",
            )

    def booking_attributes(self, rng, service, status):
        """Attribute values in their stored form: strings, integers, decimals as strings."""
        attributes = {}
        if rng.random() < 0.6:
            attributes["reason"] = rng.choice(VISIT_REASONS[self.language])
        if service in COLOUR_SERVICES:
            oxidant = OXIDANT_WORD[self.language]
            attributes["colour_formula"] = f"{rng.choice(COLOUR_SHADES)} + {rng.choice(OXIDANTS)} {oxidant}"
            attributes["processing_minutes"] = rng.choice((25, 30, 35, 40, 45))
        if status == AppointmentStatus.COMPLETED and rng.random() < 0.2:
            attributes["retail_sale"] = rng.choice(["12.50", "18.90", "24.90", "32.00"])
        return attributes

    def create_local_values(self, rng, shared_customers, branches):
        """Let branches keep their own phone number and notes for a few shared customers."""
        settings = ClientDBSettings.load()
        settings.branches_may_edit_global_customers = True
        settings.save()
        for customer, (slug, english, german) in zip(rng.sample(shared_customers, len(LOCAL_VALUES)), LOCAL_VALUES):
            note = english if self.language == "en" else german
            save_local_values(customer, branches[slug], {"phone_raw": mobile_number(rng), "notes": note})

    def print_logins(self):
        self.stdout.write("")
        self.stdout.write(f"{'username':<10}{'password':<10}{'role':<24}what they see")
        for demo_user in USERS:
            self.stdout.write(f"{demo_user.username:<10}{demo_user.username:<10}{demo_user.role:<24}{demo_user.sees}")
        self.stdout.write("")
        self.stdout.write("Open http://127.0.0.1:8000/admin/ (the booking pages: http://127.0.0.1:8000/)")
