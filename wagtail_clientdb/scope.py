"""Who sees and may change which customer: the multi-branch rules of DESIGN.md.

Every entry point (admin views, bulk actions, export, import, API, booking) asks this
module; none re-implements the rules.

A *viewer* is a user looking at the customer database through one or more branches:
in the admin, branch staff always work in exactly one *current* branch, and a branch
manager works company-wide (``branches == ()``) or views the company as one branch.
"""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import Branch, BranchMembership, ClientDBSettings, Customer, DeletionRequest, DeletionStatus, Service

MANAGE_GLOBAL_PERMISSION = "wagtail_clientdb.manage_global_customers"
SESSION_BRANCH_KEY = "wagtail_clientdb_branch"

ALL_BRANCHES_IS_FINAL = _(
    "This customer is shared with all branches. Sharing with all branches is final: "
    "it cannot be narrowed to specific branches."
)


def is_branch_manager(user):
    return bool(user and user.is_active and user.has_perm(MANAGE_GLOBAL_PERMISSION))


def member_branches(user):
    """The active branches the user works in, by name."""
    if not user or not user.is_authenticated:
        return Branch.objects.none()
    return Branch.objects.active().filter(memberships__user=user).order_by("name")


@dataclass(frozen=True)
class Viewer:
    user: object
    is_manager: bool
    #: The branches this viewer sees customers through; empty for company-wide.
    branches: tuple = field(default=())

    @property
    def is_central(self):
        """Company-wide view: a branch manager not looking through a branch."""
        return self.is_manager and not self.branches

    @property
    def branch(self):
        """The one branch of a branch view (``None`` when central or several)."""
        return self.branches[0] if len(self.branches) == 1 else None

    @property
    def sees_nothing(self):
        return not self.is_manager and not self.branches

    @cached_property
    def customers_seen(self):
        """:func:`visible_customers`, built once: a listing page asks for it three times or more, and
        building the scope's conditions costs more than copying them (use ``.all()``)."""
        return visible_customers(self, Customer.objects.all())


def viewer_for_user(user):
    """A viewer through all of the user's branches (API, permission policy)."""
    if is_branch_manager(user):
        return Viewer(user, True)
    return Viewer(user, False, tuple(member_branches(user)))


def viewer_for_request(request):
    """The admin viewer of a request.

    Branch staff work in one current branch, chosen with the branch switcher (kept in
    the session) among the branches they belong to. Membership is re-read on every
    request, so a user who loses a branch loses its customers on the very next request.
    Branch managers work company-wide; the listing's "Location" filter shows the
    customers as one branch sees them.
    """
    cached = getattr(request, "_clientdb_viewer", None)
    if cached is not None and cached.user == request.user:
        return cached
    user = request.user
    if is_branch_manager(user):
        viewer = Viewer(user, True)
    else:
        chosen = request.session.get(SESSION_BRANCH_KEY) if hasattr(request, "session") else None
        branches = list(member_branches(user))
        current = next((b for b in branches if b.pk == chosen), branches[0] if branches else None)
        viewer = Viewer(user, False, (current,) if current else ())
        request._clientdb_branch_choices = branches
    request._clientdb_viewer = viewer
    return viewer


def branch_choices_for_request(request):
    """:func:`branch_choices_for` the request's user, as :func:`viewer_for_request` read them
    (the branch switcher of every listing page read them a second time)."""
    viewer = viewer_for_request(request)
    return [] if viewer.is_manager else request._clientdb_branch_choices


def viewer_for_job(user, branch):
    """The viewer of work started earlier (a background import or export), checked again now:
    a user who lost the branch in the meantime sees nothing. Staff act in their branch; a
    manager acts company-wide, or as ``branch`` when one was chosen (the import command).
    """
    manager = is_branch_manager(user)
    if branch is not None and (manager or member_branches(user).filter(pk=branch.pk).exists()):
        return Viewer(user, False, (branch,))
    return Viewer(user, manager)


def branch_choices_for(user):
    """Branches a user may switch the admin to (branch staff only)."""
    if is_branch_manager(user):
        return Branch.objects.none()
    return member_branches(user)


def choose_branch(request, branch):
    """Make ``branch`` the current branch of the admin session."""
    if not branch_choices_for(request.user).filter(pk=branch.pk).exists():
        raise PermissionDenied
    request.session[SESSION_BRANCH_KEY] = branch.pk
    request._clientdb_viewer = None


def visible_in_branches_q(branches):
    """Customers a set of branches sees: shared with all, shared with one of them, or local there.

    Customers queued for deletion stay only in the branches whose upcoming appointments
    block the deletion.
    """
    branch_ids = [b.pk for b in branches]
    open_request = DeletionRequest.objects.filter(
        customer=OuterRef("pk"), status__in=[DeletionStatus.PENDING, DeletionStatus.BLOCKED]
    )
    still_seen = open_request.filter(blocking_branches__in=branch_ids)
    return in_scope_of_branches_q(branch_ids) & (~Exists(open_request) | Exists(still_seen))


def in_scope_of_branches_q(branch_ids):
    """Customers whose scope takes in one of the branches (ids): shared with all, shared with
    one of them, or local there — whether queued for deletion or not."""
    shared = Customer.branches.through.objects.filter(customer=OuterRef("pk"), branch_id__in=branch_ids)
    return Q(home_branch__isnull=True, shared_with_all_branches=True) | Q(home_branch_id__in=branch_ids) | Exists(shared)


def visible_customers(viewer, queryset=None):
    if queryset is None:
        return viewer.customers_seen.all()
    if viewer.is_central:
        return queryset
    if viewer.sees_nothing:
        return queryset.none()
    return queryset.filter(visible_in_branches_q(viewer.branches))


def tags_of_visible_customers(viewer, tags=None):
    """Tags carried by customers the viewer sees: free-text tags can hold personal data
    ("Müller family"), so a branch is not shown the tags only other branches' customers carry.
    One probe per tag (stopping at the first customer seen), not a join of every tagged customer.
    """
    from .models import CustomerTag

    tags = CustomerTag.all_tags.all() if tags is None else tags
    return tags.filter(Exists(visible_customers(viewer).filter(tagged_items__tag=OuterRef("pk"))))


def is_visible(viewer, customer):
    return visible_customers(viewer).filter(pk=customer.pk).exists()


def branches_may_edit_global_customers(request=None):
    """The company's setting; with ``request``, read once for it (Wagtail keeps it there)."""
    return ClientDBSettings.load(request_or_site=request).branches_may_edit_global_customers


class EditMode:
    """How a viewer's edit of a customer is stored."""

    #: The one record is changed (managers; a branch editing its own local customer).
    DIRECT = "direct"
    #: The change is kept as the current branch's local values.
    OVERRIDE = "override"
    #: The viewer may look but not change.
    READ_ONLY = "read_only"


def edit_mode(viewer, customer, *, may_edit_global=None):
    """How ``viewer`` may change ``customer`` (assumed visible to the viewer).

    ``may_edit_global`` saves a query per row in listings; it defaults to the setting.
    """
    if viewer.is_manager:
        return EditMode.DIRECT
    branch = viewer.branch
    if branch is None:
        return EditMode.READ_ONLY
    if customer.home_branch_id == branch.pk:
        return EditMode.DIRECT
    if may_edit_global is None:
        may_edit_global = branches_may_edit_global_customers()
    if customer.is_global and may_edit_global:
        return EditMode.OVERRIDE
    return EditMode.READ_ONLY


def split_by_direct_edit(viewer, customers):
    """``customers`` (a queryset) as two: those ``viewer`` changes directly (:func:`edit_mode`
    is ``DIRECT``, which :func:`can_delete` also asks) and the others — the rule asked of a
    whole listing at once (a bulk action on every customer of a segment), not of each customer."""
    if viewer.is_manager:
        return customers, customers.none()
    if viewer.branch is None:
        return customers.none(), customers
    own = Q(home_branch=viewer.branch)
    return customers.filter(own), customers.exclude(own)


def can_delete(viewer, customer):
    """Global customers are deleted centrally; local ones by their own branch."""
    if viewer.is_manager:
        return True
    return bool(viewer.branch) and customer.home_branch_id == viewer.branch.pk


def can_manage_sharing(viewer):
    return viewer.is_manager


def gives_external_ids(viewer):
    """External IDs are one namespace for the company, which only the head office writes (the
    admin's form, the import, the API): a branch uses one only to find its own customer, so
    that no answer tells it that another branch's customer holds an ID."""
    return viewer.is_manager


def apply_new_customer_scope(viewer, customer):
    """Scope of a customer created by ``viewer``: global from managers, local from branches."""
    if viewer.is_manager:
        customer.home_branch = None
        return
    if viewer.branch is None:
        raise PermissionDenied(_("You are not a member of any branch, so you cannot add customers."))
    customer.home_branch = viewer.branch
    customer.shared_with_all_branches = False


def require_a_branch(*, all_branches, branches, count=1):
    """A manager's new customers are shared with all branches or with at least one branch:
    "specific branches" with none would make customers that no branch sees."""
    if not all_branches and not branches:
        raise ValidationError(
            ngettext(
                "Choose the branches that should see the new customer, or share it with all branches.",
                "Choose the branches that should see the new customers, or share them with all branches.",
                count,
            ),
            code="no_branch",
        )


def check_sharing(customer, *, all_branches, branches=None):
    """Refuse a change of sharing that would narrow an all-branches customer, or (``branches``
    given) leave a shared customer with no branch that sees it."""
    if customer.pk is None:
        return
    stored = Customer.objects.filter(pk=customer.pk).values_list("shared_with_all_branches", "home_branch_id").first()
    if stored is None:
        return
    shared_with_all, home_branch = stored
    if shared_with_all and not all_branches:
        raise ValidationError(ALL_BRANCHES_IS_FINAL, code="all_branches_final")
    if branches is not None and home_branch is None and not all_branches and not branches:
        raise ValidationError(
            _("A shared customer keeps at least one branch: choose the branches that see it, or share it with all branches."),
            code="no_branch",
        )


@transaction.atomic
def set_sharing(customer, *, all_branches, branches=()):
    """Share a customer with all branches or with specific ones (managers only).

    A local customer shared this way becomes global, keeping its branch among the
    specific ones so that nobody loses it. Narrowing "all branches" raises
    :class:`ValidationError` and changes nothing.
    """
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    check_sharing(locked, all_branches=all_branches, branches=branches)
    before = (locked.shared_with_all_branches, locked.home_branch_id, set(locked.branches.values_list("pk", flat=True)))
    from . import removals

    seen_before = removals.seen_by([customer.pk])
    branches = set(branches)
    if locked.home_branch_id is not None and (all_branches or branches):
        branches.add(locked.home_branch)
        customer.home_branch = None
    customer.shared_with_all_branches = bool(all_branches)
    Customer.objects.filter(pk=customer.pk).update(
        home_branch=customer.home_branch,
        shared_with_all_branches=customer.shared_with_all_branches,
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    customer.branches.set([] if all_branches else branches)
    shared_with = set() if all_branches else branches
    removals.record_unshared(seen_before, removals.seen_by([customer.pk]))
    if before != (bool(all_branches), customer.home_branch_id, {branch.pk for branch in shared_with}):
        from . import audit

        audit.sharing_changed(customer, all_branches=all_branches, branches=shared_with)


@transaction.atomic
def share_with_more_branches(customers, *, all_branches=False, branches=()):
    """Widen the sharing of ``customers`` (a bulk action, managers only), as :func:`set_sharing`
    would for each: a local customer becomes global, keeping its branch among the specific
    ones; nothing is narrowed, and customers already shared with all branches stay as they
    are. A few statements for all of them (a chunk of a listing, :mod:`~wagtail_clientdb.bulk_edits`).
    Returns how many changed.
    """
    from . import audit, bulk

    locked = dict(
        Customer.objects.select_for_update()
        .filter(bulk.any_of("id", sorted({customer.pk for customer in customers})), shared_with_all_branches=False)
        .order_by("pk")
        .values_list("pk", "home_branch_id")
    )
    through = Customer.branches.through
    shared_now = {pk: set() for pk in locked}
    for customer_id, branch_id in through.objects.filter(bulk.any_of("customer_id", list(locked))).values_list(
        "customer_id", "branch_id"
    ):
        shared_now[customer_id].add(branch_id)
    if all_branches:
        shared = {pk: set() for pk in locked}
        changed = list(locked)
        through.objects.filter(bulk.any_of("customer_id", changed)).delete()
    else:
        wanted = {branch.pk for branch in branches}
        shared = {pk: shared_now[pk] | wanted | ({home} if home else set()) for pk, home in locked.items()}
        changed = [pk for pk, home in locked.items() if home is not None or shared[pk] != shared_now[pk]]
        bulk.insert_links(
            through, "customer", "branch", [(pk, branch_id) for pk in changed for branch_id in sorted(shared[pk] - shared_now[pk])]
        )
    if not changed:
        return 0
    Customer.objects.filter(bulk.any_of("id", changed)).update(
        shared_with_all_branches=bool(all_branches), home_branch=None, version=F("version") + 1, updated_at=timezone.now()
    )
    names = dict(Branch.objects.values_list("pk", "name"))
    audit.sharing_changed_many(
        Customer.objects.filter(bulk.any_of("id", changed)).order_by("pk"),
        all_branches=all_branches,
        branch_names={pk: sorted(names[branch_id] for branch_id in shared[pk]) for pk in changed},
    )
    return len(changed)


def visible_appointments(viewer, queryset=None):
    """Appointments a viewer sees: those of its branches (all of them company-wide)."""
    from .models import Appointment

    queryset = Appointment.objects.all() if queryset is None else queryset
    if viewer.is_central:
        return queryset
    if viewer.sees_nothing:
        return queryset.none()
    return queryset.filter(branch__in=viewer.branches)


def visible_branches(viewer):
    if viewer.is_manager:
        return Branch.objects.all()
    return Branch.objects.filter(pk__in=[b.pk for b in viewer.branches])


def visible_services(viewer):
    """The head office sees every service; branch staff the services their branches offer."""
    if viewer.is_manager:
        return Service.objects.all()
    return Service.objects.filter(pk__in=Service.objects.filter(branches__in=viewer.branches).values("pk"))


def visible_deletion_requests(viewer, queryset=None):
    """Managers see the whole queue; branch staff the requests made in their branches."""
    queryset = DeletionRequest.objects.all() if queryset is None else queryset
    if viewer.is_manager:
        return queryset
    return queryset.filter(requested_in_branch__in=viewer.branches)


def visible_jobs(viewer, model):
    """Imports and exports (``model``: ImportJob or ExportJob), as their history shows them:
    managers see all; branch staff those they started and those of their branches."""
    if viewer.is_manager:
        return model.objects.all()
    if viewer.user is None:
        return model.objects.none()
    return model.objects.filter(Q(created_by=viewer.user) | Q(branch__in=viewer.branches))


def staff_choices(viewer):
    """Users an appointment can be given to: the staff of the viewer's branches (of every
    active branch, company-wide)."""
    branches = Branch.objects.active() if viewer.is_manager else visible_branches(viewer)
    members = BranchMembership.objects.filter(branch__in=branches).values("user")
    return get_user_model().objects.filter(is_active=True, pk__in=members).order_by("first_name", "last_name", "pk")
