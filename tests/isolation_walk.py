"""Helpers of ``tests/test_isolation_walk.py``: branch B's data with markers, the walk over
the URL resolver, concrete URLs, response bodies as text, and a snapshot of B's data.

Every admin URL pattern is requested as a hostile member of branch A with branch B's
object ids; nothing here knows the individual views, so a new endpoint is walked as
soon as it is registered.
"""

import datetime
import functools
import io
import re
import zipfile
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from importlib import import_module
from urllib.parse import urlencode

from django.apps import apps
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import FieldDoesNotExist
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import NoReverseMatch, Resolver404
from django.utils import timezone
from taggit.models import TagBase
from wagtail.admin.views.bulk_action.registry import bulk_action_registry

from tests.conftest import (
    MANAGER_EXTRA_PERMISSIONS,
    STAFF_PERMISSIONS,
    make_appointment,
    make_customer,
    make_service,
    permissions,
)
from tests.import_files import csv_bytes
from wagtail_clientdb import deletion, duplicates, overrides, scope
from wagtail_clientdb.models import (
    Appointment,
    AttributeDefinition,
    Branch,
    BranchBookings,
    BranchMembership,
    BulkActionJob,
    ClientDBSettings,
    ConsentEvent,
    Customer,
    CustomerGroup,
    CustomerOverride,
    DeletionRequest,
    DeletionStatus,
    DuplicatePair,
    ExportJob,
    ImportBatch,
    ImportBatchPart,
    ImportJob,
    Segment,
)

APP_LABEL = "wagtail_clientdb"

#: Every marker starts with this; it is also the search term, so a search box that echoes
#: the term never matches a (longer) marker.
PREFIX = "Zq7bMk"
SEARCH_TERM = PREFIX

#: What branch B's data holds. Only B's data contains these strings (compared without
#: case); names say where each comes from. ``tests/test_isolation_walk.py`` shows that a
#: legitimate viewer of B finds every one of them through the walk.
MARKERS = {
    "local customer first name": PREFIX + "LocalFirst",
    "local customer last name": PREFIX + "LocalLast",
    "local customer email": "zq7bmklocalmail",
    # An 8-digit run that E.164, international and national formats all contain.
    "local customer phone": "97531864",
    "local customer notes": PREFIX + "LocalNotes",
    "local customer external ID": PREFIX + "ExternalId",
    "local customer attribute value": PREFIX + "AttrValue",
    "local customer tag": PREFIX + "TagName",
    "appointment notes (local customer)": PREFIX + "ApptNotesLocal",
    "appointment booking attribute": PREFIX + "BookingWish",
    "appointment notes (global customer)": PREFIX + "ApptNotesGlobal",
    "local value first name (global customer)": PREFIX + "OverrideFirst",
    "local value last name (global customer)": PREFIX + "OverrideLast",
    "local value email (global customer)": "zq7bmkoverridemail",
    "local value phone (global customer)": "86420975",
    "local value notes (global customer)": PREFIX + "OverrideNotes",
    "local value attribute (global customer)": PREFIX + "OverrideAttr",
    "customer queued for deletion, first name": PREFIX + "DeleteFirst",
    "customer queued for deletion, last name": PREFIX + "DeleteLast",
    "appointment notes (blocking the deletion)": PREFIX + "ApptNotesBlocking",
    "import file name": "zq7bmkimportfile",
    "import row name": PREFIX + "ImportFirst",
    "refused import row": PREFIX + "ImportRefused",
    "branch B name": PREFIX + "BranchName",
    "branch B slug": "zq7bmkbranchslug",
    "branch B address": PREFIX + "BranchAddress",
    "segment of branch B": PREFIX + "SegmentShared",
    "private segment of B's staff": PREFIX + "SegmentPrivate",
}

#: A value that is no object's id.
FALLBACK_ID = 987654

ATTRIBUTE_KEY = "favourite_colour"
BOOKING_ATTRIBUTE_KEY = "booking_wish"


# --- Branch B's data (and A's, so that A's pages are not empty) ---------------------------------------


@dataclass
class World:
    branch_a: Branch
    branch_b: Branch
    manager: object
    staff_a: object
    staff_b: object
    global_customer: Customer
    local_b: Customer
    queued_b: Customer
    deletion_request: DeletionRequest
    import_job: ImportJob
    export_job: ExportJob
    bulk_action_job: BulkActionJob
    #: model → pks of objects whose pages may show B's data: B's own objects, and the
    #: company-wide objects (groups, attributes, settings) that B's data uses.
    b_pks: dict = field(default_factory=dict)
    #: model → pks of A's own objects: their forms, posted with B's ids, must not show B's data.
    a_pks: dict = field(default_factory=dict)
    #: :func:`b_state` right after the data was made.
    baseline: dict = None

    @property
    def all_b_pks(self):
        return sorted({pk for pks in self.b_pks.values() for pk in pks})

    def pks_for(self, model):
        """B's pks of ``model`` when it has any, else every B pk (any model could be meant)."""
        return self.b_pks.get(model) or self.all_b_pks


def _group(name, pairs):
    group = Group.objects.create(name=name)
    group.permissions.set(permissions(pairs))
    return group


def _hostile_group():
    """Every permission of the app except the branch manager's, and admin access.

    Wagtail's own models (pages, images, documents, users, sites) get none: B's data lives
    only in the app's models, and Wagtail's endpoints that can show it (choosers, bulk
    actions, history, usage, reports, autocomplete) are gated by the app's permissions.
    User and group management would make A a site administrator who lists all users by design.
    """
    group = Group.objects.create(name="Hostile branch staff")
    group.permissions.set(
        Permission.objects.filter(content_type__app_label=APP_LABEL).exclude(codename="manage_global_customers")
    )
    group.permissions.add(*permissions([("wagtailadmin", "access_admin")]))
    return group


def _user(username, group, branches=()):
    user = get_user_model().objects.create_user(username=username, password="password", email=f"{username}@example.com")
    user.groups.set([group])
    for branch in branches:
        BranchMembership.objects.create(user=user, branch=branch)
    return user


def _admin_post(client, url, data, expected_status=302):
    response = client.post(url, data)
    assert response.status_code == expected_status, (url, response.status_code, _form_errors(response))
    return response


def _form_errors(response):
    context = getattr(response, "context", None)
    form = context.get("form") if context else None
    return form.errors if form is not None else None


def _snippet_url(model, name, *args):
    return reverse(model.snippet_viewset.get_url_name(name), args=args)


def build_world():
    """Branches A and B, a manager, hostile staff of A, staff of B, and B's data with markers.

    B's customers and appointments are created through the admin as staff B, so Wagtail
    writes the log entries and reference index rows a real branch leaves behind.
    """
    branch_a = Branch.objects.create(name="Alpha Salon", slug="alpha", timezone="Europe/Berlin")
    branch_b = Branch.objects.create(
        name=MARKERS["branch B name"],
        slug=MARKERS["branch B slug"],
        address=MARKERS["branch B address"],
        timezone="Europe/Vienna",
    )
    manager = _user("manager", _group("Branch managers", STAFF_PERMISSIONS + MANAGER_EXTRA_PERMISSIONS))
    staff_a = _user("staff_a", _hostile_group(), [branch_a])
    staff_b = _user("staff_b", _group("Branch staff", STAFF_PERMISSIONS), [branch_b])

    settings_row = ClientDBSettings.load()
    settings_row.branches_may_edit_global_customers = True
    settings_row.save()
    AttributeDefinition.objects.create(label="Favourite colour", key=ATTRIBUTE_KEY)
    AttributeDefinition.objects.create(label="Booking wish", key=BOOKING_ATTRIBUTE_KEY, applies_to="booking")
    regulars = CustomerGroup.objects.create(name="Regulars")

    # Company data every branch sees, and A's own data.
    global_customer = make_customer(
        first_name="Gloria", last_name="Globalall", email="gloria@example.com", shared_with_all_branches=True
    )
    global_customer.groups.add(regulars)
    local_a = make_customer(first_name="Lena", last_name="Locala", email="lena@example.com", home_branch=branch_a)
    local_a.tags.add("alpha-regular")
    a_appointments = [
        make_appointment(local_a, branch_a, service="Alpha haircut"),
        make_appointment(global_customer, branch_a, service="Alpha colouring"),
    ]

    client = Client()
    client.force_login(staff_b)
    customer_add = _snippet_url(Customer, "add")
    _admin_post(
        client,
        customer_add,
        {
            "first_name": MARKERS["local customer first name"],
            "last_name": MARKERS["local customer last name"],
            "email": MARKERS["local customer email"] + "@example.com",
            "phone_raw": "0176 " + MARKERS["local customer phone"],
            "notes": MARKERS["local customer notes"],
            "marketing_consent": "on",
            "groups": [regulars.pk],
            "tags": MARKERS["local customer tag"],
            f"attr__{ATTRIBUTE_KEY}": MARKERS["local customer attribute value"],
        },
    )
    local_b = Customer.objects.get(first_name=MARKERS["local customer first name"])
    # External IDs are the head office's to give (a branch's form has no such field).
    Customer.objects.filter(pk=local_b.pk).update(external_id=MARKERS["local customer external ID"])
    _admin_post(
        client,
        customer_add,
        {
            "first_name": MARKERS["customer queued for deletion, first name"],
            "last_name": MARKERS["customer queued for deletion, last name"],
            "groups": [regulars.pk],
        },
    )
    queued_b = Customer.objects.get(first_name=MARKERS["customer queued for deletion, first name"])
    assert local_b.home_branch == branch_b and queued_b.home_branch == branch_b

    appointment_add = _snippet_url(Appointment, "add")
    start = timezone.localtime(timezone.now() + datetime.timedelta(days=3)).replace(second=0, microsecond=0)
    # Services are the company's (every branch's staff sees the list); B's appointments are B's.
    service = make_service("Walk haircut", branch_a, branch_b)
    for customer, notes in [
        (local_b, "appointment notes (local customer)"),
        (global_customer, "appointment notes (global customer)"),
        (queued_b, "appointment notes (blocking the deletion)"),
    ]:
        _admin_post(
            client,
            appointment_add,
            {
                "customer": customer.pk,
                "branch": branch_b.pk,
                "start": f"{start:%Y-%m-%d %H:%M}",
                "end": f"{start + datetime.timedelta(hours=1):%Y-%m-%d %H:%M}",
                "service": service.pk,
                "status": "booked",
                "notes": MARKERS[notes],
                f"attr__{BOOKING_ATTRIBUTE_KEY}": MARKERS["appointment booking attribute"]
                if customer == local_b
                else "",
            },
        )
    assert Appointment.objects.filter(branch=branch_b).count() == 3

    overrides.save_local_values(
        global_customer,
        branch_b,
        {
            "first_name": MARKERS["local value first name (global customer)"],
            "last_name": MARKERS["local value last name (global customer)"],
            "email": MARKERS["local value email (global customer)"] + "@example.com",
            "phone_raw": "0176 " + MARKERS["local value phone (global customer)"],
            "notes": MARKERS["local value notes (global customer)"],
        },
        attributes={ATTRIBUTE_KEY: MARKERS["local value attribute (global customer)"]},
        user=staff_b,
    )

    deletion_request = deletion.request_deletion(scope.Viewer(staff_b, False, (branch_b,)), queued_b)
    assert deletion_request.status == DeletionStatus.BLOCKED

    # B's customer entered twice (the same name and email): a possible duplicate only B sees.
    twice_b = make_customer(
        first_name=MARKERS["local customer first name"],
        last_name=MARKERS["local customer last name"],
        email=MARKERS["local customer email"] + "@example.com",
        home_branch=branch_b,
    )
    duplicates.scan()
    duplicate_pair = DuplicatePair.objects.get(customer_a=local_b, customer_b=twice_b)

    # An import previewed in B, with one refused row (so that there is a report to download).
    upload = SimpleUploadedFile(
        MARKERS["import file name"] + ".csv",
        csv_bytes(
            [
                ["Name", "Phone", "Email", "Notes", "Marketing consent"],
                [MARKERS["import row name"] + " Importson", "", "zq7bmkimportrow@example.com", "", "1"],
                [MARKERS["refused import row"] + " Broken", "", "not an email", "", ""],
            ]
        ),
    )
    _admin_post(client, _snippet_url(Customer, "import"), {"file": upload})
    import_job = ImportJob.objects.get(created_by=staff_b)
    assert import_job.branch == branch_b and import_job.report, import_job.status

    # A bulk import of B's staff: an import batch that can be rolled back.
    from wagtail_clientdb.imports.records import import_records

    _saved, _results, import_batch = import_records(
        scope.Viewer(staff_b, False, (branch_b,)), [{"first_name": "Bulk", "last_name": "Imported", "email": "bulk-b@example.com"}]
    )
    assert import_batch.branch == branch_b and import_batch.created == 1

    # A large export of B: written to storage by a background task (inline in tests).
    with override_settings(WAGTAIL_CLIENTDB={**settings.WAGTAIL_CLIENTDB, "EXPORT_BACKGROUND_ROWS": 0}):
        response = client.get(_snippet_url(Customer, "list"), {"export": "xlsx"})
    assert response.status_code == 302, response.status_code
    export_job = ExportJob.objects.get(created_by=staff_b)
    assert export_job.branch == branch_b and export_job.file, export_job.status

    # A bulk action of B on every customer of its listing, more than a request changes: a job
    # for a background task (left waiting: its task runs after a commit, which a test has none of).
    bulk_url = reverse("wagtail_bulk_action", args=(APP_LABEL, "customer", "add_tags")) + "?" + urlencode(
        {"id": "all", "next": _snippet_url(Customer, "list")}
    )
    with override_settings(WAGTAIL_CLIENTDB={**settings.WAGTAIL_CLIENTDB, "BULK_ACTION_BACKGROUND_CUSTOMERS": 0}):
        opened_at = client.get(bulk_url).context["form"]["opened_at"].value()
        response = client.post(bulk_url, {"opened_at": opened_at, "tags": "bulk-b"})
    assert response.status_code == 302, response.status_code
    bulk_action_job = BulkActionJob.objects.get(created_by=staff_b)
    assert bulk_action_job.branch == branch_b

    # B's saved filters: one shared with the branch, one private, both saved from B's listing;
    # and a dynamic group whose rule (B's local tag) finds B's customer when B looks.
    for name, visibility in [("segment of branch B", "branch"), ("private segment of B's staff", "private")]:
        _admin_post(
            client,
            _snippet_url(Segment, "add"),
            {"name": MARKERS[name], "query": f"q={MARKERS['local customer last name']}", "visibility": visibility, "branch": branch_b.pk},
        )
    b_segments = list(Segment.objects.filter(owner=staff_b).values_list("pk", flat=True))
    assert len(b_segments) == 2
    b_tag = local_b.tags.get()
    rule = Segment.objects.create(name="Walk rule", query=f"tags={b_tag.pk}", owner=manager, visibility="company")
    CustomerGroup.objects.create(name="Walk dynamic group", segment=rule)

    world = World(
        branch_a=branch_a,
        branch_b=branch_b,
        manager=manager,
        staff_a=staff_a,
        staff_b=staff_b,
        global_customer=global_customer,
        local_b=local_b,
        queued_b=queued_b,
        deletion_request=deletion_request,
        import_job=import_job,
        export_job=export_job,
        bulk_action_job=bulk_action_job,
    )
    tag_model = Customer.tags.through.tag_model()
    tagged_items = Customer.tags.through.objects.filter(**Customer.tags.through.lookup_kwargs(local_b))
    b_customers = [local_b.pk, queued_b.pk, global_customer.pk, twice_b.pk]
    world.b_pks = {
        Customer: b_customers,
        Appointment: list(Appointment.objects.filter(branch=branch_b).values_list("pk", flat=True)),
        Branch: [branch_b.pk],
        BranchMembership: list(BranchMembership.objects.filter(branch=branch_b).values_list("pk", flat=True)),
        CustomerOverride: list(CustomerOverride.objects.filter(branch=branch_b).values_list("pk", flat=True)),
        ConsentEvent: list(ConsentEvent.objects.filter(customer__in=b_customers).values_list("pk", flat=True)),
        DeletionRequest: [deletion_request.pk],
        DuplicatePair: [duplicate_pair.pk],
        ImportJob: [import_job.pk],
        ImportBatch: [import_batch.pk],
        ExportJob: [export_job.pk],
        BulkActionJob: [bulk_action_job.pk],
        Segment: [*b_segments, rule.pk],
        Customer.tags.through: list(tagged_items.values_list("pk", flat=True)),
        tag_model: list(local_b.tags.values_list("pk", flat=True)),
        get_user_model(): [staff_b.pk],
        # Company-wide objects that B's data uses: their pages may list B's objects.
        CustomerGroup: list(CustomerGroup.objects.values_list("pk", flat=True)),
        AttributeDefinition: list(AttributeDefinition.objects.values_list("pk", flat=True)),
        ClientDBSettings: [settings_row.pk],
    }
    world.a_pks = {Customer: [local_a.pk], Appointment: [a.pk for a in a_appointments], Branch: [branch_a.pk]}
    return world


# --- What "B changed" means ---------------------------------------------------------------------------


def _rows(queryset, exclude=()):
    return [{k: v for k, v in row.items() if k not in exclude} for row in queryset.order_by("pk").values()]


def _file_bytes(field_file):
    if not field_file:
        return None
    try:
        with field_file.storage.open(field_file.name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return "missing"


def b_state(world):
    """Everything of branch B, including rows that point at B (new ones would show up too)."""
    branch_b, staff_b = world.branch_b, world.staff_b
    local_ids = list(Customer.objects.filter(home_branch=branch_b).values_list("pk", flat=True))
    b_customers = Customer.objects.filter(pk__in=[*local_ids, world.global_customer.pk]).order_by("pk")
    customer_ids = [customer.pk for customer in b_customers]
    tag_model = Customer.tags.through.tag_model()
    imports = ImportJob.objects.filter(branch=branch_b) | ImportJob.objects.filter(created_by=staff_b)
    exports = ExportJob.objects.filter(branch=branch_b) | ExportJob.objects.filter(created_by=staff_b)
    requests = DeletionRequest.objects.filter(requested_in_branch=branch_b) | DeletionRequest.objects.filter(
        customer__home_branch=branch_b
    )
    return {
        "branch": _rows(Branch.objects.filter(pk=branch_b.pk)),
        "memberships": _rows(BranchMembership.objects.filter(branch=branch_b)),
        "staff user": _rows(get_user_model().objects.filter(pk=staff_b.pk), exclude={"last_login"}),
        # The company-wide count of bookings follows A's own appointments of shared customers;
        # what B counts is B's.
        "customers": _rows(b_customers, exclude={"bookings_total"}),
        "bookings in B": _rows(BranchBookings.objects.filter(branch=branch_b)),
        "customer branches": sorted(
            Customer.branches.through.objects.filter(customer__in=customer_ids).values_list("customer", "branch")
        ),
        "customer groups": sorted(
            Customer.groups.through.objects.filter(customer__in=customer_ids).values_list("customer", "customergroup")
        ),
        "company groups": sorted(CustomerGroup.objects.values_list("pk", "name")),
        "customer tags": [(customer.pk, sorted(customer.tags.names())) for customer in b_customers],
        "tags": _rows(tag_model.objects.filter(pk__in=world.b_pks[tag_model])),
        "consent events": _rows(ConsentEvent.objects.filter(customer__in=customer_ids)),
        "local values": _rows(CustomerOverride.objects.filter(branch=branch_b)),
        # B's appointments, and any appointment (of any branch) of B's local customers.
        "appointments": _rows(
            Appointment.objects.filter(branch=branch_b) | Appointment.objects.filter(customer__in=local_ids)
        ),
        "deletion requests": _rows(requests.distinct()),
        "blocking branches": sorted(
            DeletionRequest.blocking_branches.through.objects.filter(branch=branch_b).values_list(
                "deletionrequest", "branch"
            )
        ),
        "possible duplicates": _rows(
            DuplicatePair.objects.filter(customer_a__in=customer_ids) | DuplicatePair.objects.filter(customer_b__in=customer_ids)
        ),
        "import jobs": _rows(imports.distinct()),
        "import batches": _rows(ImportBatch.objects.filter(branch=branch_b)),
        "import batch parts": _rows(ImportBatchPart.objects.filter(batch__branch=branch_b)),
        "export jobs": _rows(exports.distinct()),
        "bulk action jobs": _rows(BulkActionJob.objects.filter(branch=branch_b) | BulkActionJob.objects.filter(created_by=staff_b)),
        "segments": _rows(Segment.objects.filter(owner=staff_b) | Segment.objects.filter(branch=branch_b)),
        "files": [
            _file_bytes(field_file)
            for job in [*imports.distinct(), *exports.distinct()]
            for field_file in [job.file, getattr(job, "report", None)]
        ],
    }


def describe_change(before, after):
    """What of B changed between two :func:`b_state` snapshots.

    Groups and attribute definitions are company-wide (docs/permissions.md: plain model
    permissions); deleting one removes it from every customer by design, and renaming or
    deleting a group is a change of its members (their version and ``updated_at`` move, for the
    API's sync). So both snapshots are compared as far as the groups and attributes that still
    exist are concerned, and without the customers' versions when a group changed.
    """
    keys = set(AttributeDefinition.objects.values_list("key", flat=True))
    groups = set(CustomerGroup.objects.values_list("pk", flat=True))
    group_changed = before["company groups"] != after["company groups"]
    before, after = (
        _company_wide_projection(state, keys, groups, without_versions=group_changed) for state in (before, after)
    )
    return "; ".join(f"{key} changed" for key in before if before[key] != after.get(key))


def _company_wide_projection(state, attribute_keys, group_ids, *, without_versions):
    def rows(name, dropped=()):
        return [
            {
                **{column: value for column, value in row.items() if column not in dropped},
                "attributes": {k: v for k, v in (row["attributes"] or {}).items() if k in attribute_keys},
            }
            for row in state[name]
        ]

    company = {key: value for key, value in state.items() if key != "company groups"}
    return {
        **company,
        "customers": rows("customers", ("version", "updated_at") if without_versions else ()),
        "local values": rows("local values"),
        "appointments": rows("appointments"),
        "customer groups": [pair for pair in state["customer groups"] if pair[1] in group_ids],
    }


# --- The walk over the URL resolver -------------------------------------------------------------------


@dataclass(frozen=True)
class WalkedPattern:
    """One URL pattern with the resolvers above it."""

    parts: tuple  # the patterns (RoutePattern / RegexPattern) from the root to this one
    namespaces: tuple
    pattern: URLPattern

    @property
    def route(self):
        return "".join(str(part) for part in self.parts)

    @property
    def name(self):
        if not self.pattern.name:
            return None
        return ":".join((*self.namespaces, self.pattern.name))

    @property
    def test_id(self):
        return f"{self.route} [{self.name or 'unnamed'}]"

    @property
    def parameters(self):
        """(name, converter or None for a regex group) of every parameter, in order."""
        found = []
        for part in self.parts:
            converters = getattr(part, "converters", {})
            for group in part.regex.groupindex:
                found.append((group, converters.get(group)))
        return found


def walk(resolver=None, parts=(), namespaces=()):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            namespace = (entry.namespace,) if entry.namespace else ()
            yield from walk(entry, parts + (entry.pattern,), namespaces + namespace)
        elif isinstance(entry, URLPattern):
            yield WalkedPattern(parts + (entry.pattern,), namespaces, entry)


def admin_patterns():
    """Every pattern under the Wagtail admin's prefix: Wagtail's own and the app's."""
    prefix = reverse("wagtailadmin_home").lstrip("/")
    return [walked for walked in walk() if walked.route.startswith(prefix)]


# --- Concrete URLs --------------------------------------------------------------------------------------


def app_models():
    return list(apps.get_app_config(APP_LABEL).get_models())


def tag_models():
    """Every concrete taggit tag model (taggit's global ``Tag`` and any of the app's)."""
    return [model for model in apps.get_models() if issubclass(model, TagBase) and not model._meta.abstract]


def model_choices():
    models = dict.fromkeys([*app_models(), *tag_models()])
    return [(model._meta.app_label, model._meta.model_name, model) for model in models]


def bulk_action_choices():
    """(app_label, model_name, action_type, model) for every bulk action registered for the app's models."""
    choices = []
    for model in app_models():
        for action in bulk_action_registry.get_bulk_actions_for_model(model._meta.app_label, model._meta.model_name):
            choices.append((model._meta.app_label, model._meta.model_name, action.action_type, model))
    return choices


def model_of_namespace(namespaces):
    """The model of a viewset's URL namespace, e.g. ``wagtailsnippets_wagtail_clientdb_customer``."""
    for namespace in reversed(namespaces):
        for app_label, model_name, model in model_choices():
            if namespace.endswith(f"{app_label}_{model_name}"):
                return model
    return None


def _models_named_by(parameter):
    """``job_id`` → the app's models whose name ends in ``job``; ``customer_id`` → Customer."""
    stem = re.sub(r"_(id|pk)$", "", parameter).replace("_", "")
    if stem in ("", "object", "pk", "id"):
        return []
    return [model for model in app_models() if model._meta.model_name.endswith(stem)]


def _choices_of(model, parameter):
    """The choices of the URL model's field of that name (``status`` of an appointment)."""
    try:
        field = model._meta.get_field(parameter) if model is not None else None
    except FieldDoesNotExist:
        return []
    return [value for value, _label in field.choices or []] if field is not None else []


def _split_model_parameters(names):
    app_param = next((n for n in names if n.endswith(("app_label", "app_name"))), None)
    model_param = next((n for n in names if n.endswith("model_name")), None)
    return (app_param, model_param) if app_param and model_param else (None, None)


def parameter_sets(walked, world):
    """Keyword arguments to fill the pattern with: (kwargs, the model the URL is about, index).

    Pairs of app / model parameters take every model of the app (and the taggit tag models);
    with an ``action`` they take every registered bulk action of the app's models. Object
    parameters take B's pks of the URL's model, other parameters each pk of every B object,
    and each also one id that exists nowhere; object parameters also take A's own objects
    (A's forms posted with B's ids). ``index`` counts the fillings of one model.
    """
    names = [name for name, _converter in walked.parameters]
    app_param, model_param = _split_model_parameters(names)
    if app_param and "action" in names:
        heads = [({app_param: a, model_param: m, "action": act}, model) for a, m, act, model in bulk_action_choices()]
    elif app_param:
        heads = [({app_param: a, model_param: m}, model) for a, m, model in model_choices()]
    else:
        heads = [({}, model_of_namespace(walked.namespaces))]
    sets = []
    for number, (head, model) in enumerate(heads):
        rest = [name for name in names if name not in head]
        object_values, other_values = {}, {}
        for name in rest:
            if name in ("pk", "object_id", "id") and model is not None:
                object_values[name] = [*world.pks_for(model), *world.a_pks.get(model, []), FALLBACK_ID]
            elif named := _models_named_by(name):
                ids = sorted({pk for m in named for pk in world.b_pks.get(m, [])}) or world.all_b_pks
                object_values[name] = [*ids, FALLBACK_ID]
            elif choices := _choices_of(model, name):
                # A view that checks the value first would turn every id away before its lookup.
                other_values[name] = choices
            else:
                other_values[name] = [*world.all_b_pks, FALLBACK_ID]
        if len(heads) > 1:
            # With one head per model, the other ids rotate over the heads instead of being
            # repeated for each: every value is still used, in a fraction of the requests.
            other_values = {name: [values[number % len(values)]] for name, values in other_values.items()}
        candidates = {**object_values, **other_values}
        # One combination per value ("diagonal"), not the full product: every value of every
        # parameter is used, and patterns with several ids stay a handful of requests.
        length = max((len(values) for values in candidates.values()), default=1)
        for index in range(length):
            kwargs = dict(head)
            kwargs.update({name: values[index % len(values)] for name, values in candidates.items()})
            sets.append((kwargs, model, index))
    return sets


_REGEX_SAMPLES = [(r"\.\*", "zq-walk"), (r"\.\+", "zq-walk"), (r"\\d\+", "1"), (r"\\", "")]


def _substitute(walked, kwargs):
    """Build the path of an unnamed pattern from its route (or a regex without groups)."""
    path = ""
    for part in walked.parts:
        text = str(part)
        converters = getattr(part, "converters", None)
        if converters is not None and hasattr(part, "_route"):
            for name, converter in converters.items():
                text = re.sub(rf"<(?:\w+:)?{name}>", converter.to_url(kwargs[name]), text)
        else:
            if part.regex.groupindex:
                raise ValueError(f"cannot fill the regex {text!r} of an unnamed pattern")
            text = text.lstrip("^").rstrip("$")
            for regex, sample in _REGEX_SAMPLES:
                text = re.sub(regex, sample, text)
        path += text
    return "/" + path


def build_url(walked, kwargs):
    """The path of ``walked`` with ``kwargs``; ``None`` when a value does not fit a converter."""
    kwargs = {name: str(value) for name, value in kwargs.items()}
    try:
        path = reverse(walked.name, kwargs=kwargs) if walked.name else _substitute(walked, kwargs)
    except NoReverseMatch:
        path = None
    if path is None or not resolves_to(path, walked):
        # reverse() picks the first pattern of a name that fits; build this one from its route.
        try:
            path = _substitute(walked, kwargs)
        except (KeyError, ValueError):
            return None
    return path if resolves_to(path, walked) else None


def resolves_to(path, walked):
    try:
        match = resolve(path)
    except Resolver404:
        return False
    # ResolverMatch.route drops the anchors of regex patterns.
    return match.func is walked.pattern.callback and _unanchored(match.route) == _unanchored(walked.route)


def _unanchored(route):
    return route.replace("^", "").replace("$", "")


# --- Response bodies as text --------------------------------------------------------------------------


def response_text(response):
    """Everything a response shows: headers, and the body decoded (zip members unpacked)."""
    # Reading a streamed body to its end closes it (and its file), as the test client arranges;
    # response.close() would also close the database connection (request_finished).
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    pieces = [f"{name}: {value}" for name, value in response.items()]
    pieces.append(body.decode("utf-8", errors="replace"))
    if body[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                pieces.extend(archive.read(member).decode("utf-8", errors="replace") for member in archive.namelist())
        except zipfile.BadZipFile:
            pass
    content_type = response.get("Content-Type", "")
    if not content_type.startswith(("text/", "application/json", "application/javascript")):
        # Binary spreadsheets (XLS) keep strings as UTF-16.
        pieces.append(body.decode("utf-16-le", errors="replace"))
    messages = getattr(response.wsgi_request, "_messages", None)
    pieces.extend(str(message) for message in getattr(messages, "_queued_messages", []))
    return "\n".join(pieces).lower()


def markers_in(text):
    return [name for name, marker in MARKERS.items() if marker.lower() in text]


# --- Requests -------------------------------------------------------------------------------------------


def query_variants(ids):
    """(query string, methods) each URL is requested with: none; B's ids with search terms;
    "select all" (with a spreadsheet export: listings ignore "id", bulk actions "export");
    and the search as a CSV export (Wagtail's listings and reports export their rows).
    """
    searches = [("q", SEARCH_TERM), ("term", SEARCH_TERM), ("search", SEARCH_TERM), ("p", "1")]
    return [
        ([], ("get", "post")),
        ([*(("id", pk) for pk in ids), *searches], ("get", "post")),
        ([("id", "all"), ("p", "1"), ("export", "xlsx")], ("get", "post")),
        ([*searches, ("export", "csv")], ("get",)),
    ]


#: Form fields commonly named after related objects → the model whose B pk they get.
ID_FIELDS = {
    "customer": Customer,
    "customers": Customer,
    "customer_id": Customer,
    "branch": Branch,
    "branches": Branch,
    "share_branches": Branch,
    "branch_id": Branch,
    "requested_in_branch": Branch,
    "appointment": Appointment,
    "appointments": Appointment,
    "group": CustomerGroup,
    "groups": CustomerGroup,
    "staff": "user",
    "user": "user",
    "members": "user",
    "requested_by": "user",
    "created_by": "user",
    "job": ImportJob,
    "job_id": ImportJob,
}

#: Plausible values for the other fields, so that forms get as far as saving.
OTHER_FIELDS = {
    "first_name": "Mallory",
    "last_name": "Hostile",
    "email": "mallory@example.com",
    "phone_raw": "+49 30 1234567",
    "notes": "changed by A",
    "service": "Changed by A",
    "start": "2031-01-01 10:00",
    "end": "2031-01-01 11:00",
    "status": "cancelled",
    "tags": "changed-by-a",
    "sharing": "all",
    "all_branches": "on",
    "name": "Hostile",
    "slug": "hostile",
    "address": "Hostile street",
    "timezone": "UTC",
    "is_active": "on",
    "label": "Hostile",
    "key": "hostile",
    "applies_to": "customer",
    "field_type": "text",
    "import_valid_rows": "on",
    "marketing_consent": "on",
    "external_id": "hostile-1",
    "visibility": "branch",
    "query": "q=hostile",
    "next": "/admin/",
}


def post_payload(world, model, index):
    """The ``index``-th POST body: B's ids in the usual field names, plausible other values."""

    def pick(values):
        return values[index % len(values)] if values else FALLBACK_ID

    user_model = get_user_model()
    data = dict(OTHER_FIELDS)
    for name, target in ID_FIELDS.items():
        data[name] = pick(world.pks_for(user_model if target == "user" else target))
    own_ids = world.pks_for(model) if model is not None else world.all_b_pks
    data.update({"id": pick(own_ids), "pk": pick(own_ids), "object_id": pick(own_ids)})
    return data


def concrete_urls(walked, world):
    """(path, model, index) for every way of filling the pattern that resolves back to it."""
    urls, seen = [], set()
    for kwargs, model, index in parameter_sets(walked, world):
        path = build_url(walked, kwargs)
        if path is not None and path not in seen:
            seen.add(path)
            urls.append((path, model, index))
    return urls


def with_query(path, pairs):
    return f"{path}?{urlencode(pairs)}" if pairs else path


def requests_for(path, model, index, world):
    """Every (method, url, data) the walk sends for one concrete URL.

    The first filling of a pattern (per model) gets every query string; the others, which
    differ only in the ids of the path, get GET and POST without one.
    """
    ids = world.pks_for(model) if model is not None else world.all_b_pks
    variants = query_variants(ids) if index == 0 else query_variants(ids)[:1]
    planned = []
    for number, (pairs, methods) in enumerate(variants):
        url = with_query(path, pairs)
        for method in methods:
            planned.append((method, url, post_payload(world, model, index + number) if method == "post" else None))
    return planned


# --- Sending one request ------------------------------------------------------------------------------


class WagtailServerError(UserWarning):
    """A server error in one of Wagtail's own views that has nothing to do with the app."""


@dataclass
class Outcome:
    method: str
    url: str
    status: int = None
    error: str = ""
    text: str = ""
    changed: str = ""
    #: Whether the URL is the app's (its models, viewsets or views) rather than only Wagtail's.
    about_app: bool = True

    @property
    def markers(self):
        return markers_in(self.text)

    @property
    def server_error(self):
        if self.error:
            return f"raised {self.error}"
        return f"answered {self.status}" if self.status >= 500 else ""

    def isolation_problems(self):
        found = []
        if markers := self.markers:
            found.append("shows " + ", ".join(f"{name} ({MARKERS[name]})" for name in markers))
        if self.changed:
            found.append("changed B's data: " + self.changed)
        return found


def log_in(client, user):
    """Log ``user`` in once; :func:`send` restores the session cookie before every request."""
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def still_logged_in(session_key, user):
    """Whether ``session_key`` still logs ``user`` in (session row, user id, password hash)."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user_model().objects.get(pk=user.pk)
    return session.get(SESSION_KEY) == str(user.pk) and session.get(HASH_SESSION_KEY) == user.get_session_auth_hash()


def send(client, session_key, method, url, data, world):
    """One request with the session ``session_key``, rolled back afterwards.

    The rollback undoes whatever the request wrote (including a logout or a password change,
    which would otherwise turn the following requests anonymous), so every request starts
    from B's original data and the same logged-in session; the cookie jar is reset too, so
    no message or cookie of one request shows up in the next.
    """
    outcome = Outcome(method.upper(), url)
    with transaction.atomic():
        client.cookies = SimpleCookie({settings.SESSION_COOKIE_NAME: session_key})
        with CaptureQueriesContext(connection) as queries:
            try:
                # A savepoint of its own: after a database error the checks below can still query.
                with transaction.atomic():
                    response = client.get(url) if method == "get" else client.post(url, data)
                    outcome.status = response.status_code
                    outcome.text = response_text(response)
            except Exception as error:  # noqa: BLE001 - a server error: reported, and the walk goes on
                outcome.error = f"{type(error).__name__}: {str(error)[:300]}"
        if any(writes_b_tables(query["sql"]) for query in queries):
            outcome.changed = describe_change(world.baseline, b_state(world))
        transaction.set_rollback(True)
    return outcome


#: Statements that change no data (the savepoints are the request's own rollback).
READ_ONLY_SQL = ("SELECT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@functools.cache
def b_tables():
    """Tables that can hold B's data: the app's, those of the apps with tag models, the users'."""
    labels = {APP_LABEL, *(model._meta.app_label for model in tag_models())}
    models = [model for label in labels for model in apps.get_app_config(label).get_models(include_auto_created=True)]
    models.append(get_user_model())
    return {model._meta.db_table.lower() for model in models}


def writes_b_tables(sql):
    """Whether a statement may change B's data (only then is B's state compared: it is slow)."""
    sql = sql.lstrip()
    if sql.upper().startswith(READ_ONLY_SQL):
        return False
    lowered = sql.lower()
    return any(table in lowered for table in b_tables())


def concerns_app(walked, model):
    """Whether a URL is about the app (its models, its viewsets, its own views) or only Wagtail's."""
    if model is not None and (model._meta.app_label == APP_LABEL or issubclass(model, TagBase)):
        return True
    if any(APP_LABEL in namespace for namespace in walked.namespaces):
        return True
    view = getattr(walked.pattern.callback, "view_class", walked.pattern.callback)
    return view.__module__.startswith(APP_LABEL)
