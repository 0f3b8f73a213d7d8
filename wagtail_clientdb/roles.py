"""The two roles of the product as Wagtail groups, with their permissions: branch staff and
the head office (branch managers). :func:`set_up_groups` makes or completes them, for the
command ``clientdb_setup_roles`` and the example site's demo data.

Which branches a user works in is not a permission but a membership (*Client DB → Branches →
a branch → Staff*); what each role may do is in docs/permissions.md.
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

CRUD = ("add", "change", "delete", "view")

#: ``(app label, codename)`` of each permission of branch staff: their customers and
#: appointments, and the company's lists to choose from.
STAFF_PERMISSIONS = (
    ("wagtailadmin", "access_admin"),
    *(("wagtail_clientdb", f"{action}_{model}") for model in ("customer", "appointment") for action in CRUD),
    ("wagtail_clientdb", "view_customergroup"),
    ("wagtail_clientdb", "view_service"),
    ("wagtail_clientdb", "view_deletionrequest"),
    ("wagtail_clientdb", "view_attributedefinition"),
)
#: The head office: everything branch staff may, every branch's customers, the company's
#: branches, groups, services, attributes, deletion queue and settings, and API tokens of its
#: own. (Not branch staff's: Wagtail's site history shows whoever may manage tokens every
#: token's creation, by name — a branch would read the head office's.)
MANAGER_PERMISSIONS = (
    *STAFF_PERMISSIONS,
    *(("wagtailcore", f"{action}_apitoken") for action in CRUD),
    ("wagtail_clientdb", "manage_global_customers"),
    *(
        ("wagtail_clientdb", f"{action}_{model}")
        for model in ("branch", "customergroup", "service", "attributedefinition", "deletionrequest")
        for action in CRUD
    ),
    ("wagtail_clientdb", "change_clientdbsettings"),
)

STAFF_GROUP = "Branch staff"
MANAGER_GROUP = "Branch managers"


@transaction.atomic
def set_up_groups(staff_name=STAFF_GROUP, manager_name=MANAGER_GROUP):
    """The two groups, made if missing, each given the permissions of its role (others a group
    already has are kept). Returns ``{name: (group, permissions added)}``."""
    done = {}
    for name, wanted in ((staff_name, STAFF_PERMISSIONS), (manager_name, MANAGER_PERMISSIONS)):
        group, _created = Group.objects.get_or_create(name=name)
        condition = Q(pk__in=[])
        for app_label, codename in wanted:
            condition |= Q(content_type__app_label=app_label, codename=codename)
        permissions = set(Permission.objects.filter(condition))
        missing = permissions - set(group.permissions.all())
        group.permissions.add(*missing)
        done[name] = (group, len(missing))
    return done
