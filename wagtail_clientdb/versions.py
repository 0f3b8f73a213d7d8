"""No lost updates: two people saving the same customer never silently overwrite each other.

Every change of a customer raises ``Customer.version`` (``Customer.save`` does it in the
UPDATE itself; writes that bypass ``save`` call :func:`touch`), and every change of a
branch's local values raises ``CustomerOverride.version``. An edit form carries the
versions and the values it showed (:func:`edit_base`); saving checks them again inside the
saving transaction with the row locked (:func:`check_base`) and refuses a save when a value
the form shows was changed by someone else meanwhile, naming what changed. Bulk actions
carry the versions of the customers they listed; imports compare with the time of their
preview.
"""

from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Customer, CustomerOverride

SALT = "wagtail_clientdb.edit_base"


def touch(customer_ids):
    """Record a change of these customers made without ``Customer.save`` (bulk writes);
    ``customer_ids``: ids, or a query of them (written as one subquery)."""
    if not isinstance(customer_ids, QuerySet):
        customer_ids = list(customer_ids)
    Customer.objects.filter(pk__in=customer_ids).update(version=F("version") + 1, updated_at=timezone.now())


def current_versions(customer, branch=None):
    """``(customer version, local values version)``; 0 when the branch keeps no local values."""
    override = 0
    if branch is not None:
        override = (
            CustomerOverride.objects.filter(customer_id=customer.pk, branch=branch).values_list("version", flat=True).first()
            or 0
        )
    return Customer.objects.filter(pk=customer.pk).values_list("version", flat=True).first(), override


def edit_base(versions, shown):
    """A signed token of the versions a form was made from and the values it showed
    (field name → text)."""
    return signing.dumps({"versions": list(versions), "shown": shown}, salt=SALT, compress=True)


def read_edit_base(token):
    """``(versions, shown)`` of a token from :func:`edit_base`; ``None`` if absent or forged."""
    try:
        base = signing.loads(token or "", salt=SALT)
    except signing.BadSignature:
        return None
    return tuple(base["versions"]), base["shown"]


class StaleEdit(ValidationError):
    """A save based on values that someone else has changed since; ``changes`` lists them
    as ``(field name, label, value then, value now)``."""

    def __init__(self, changes):
        self.changes = changes
        super().__init__(
            _(
                "Someone else saved this customer while you were editing it, so your changes were not saved. "
                "Changed meanwhile: %(fields)s. Check the marked fields and save again to keep what the form shows."
            ),
            code="stale",
            params={"fields": ", ".join(str(label) for _name, label, _then, _now in changes)},
        )


def check_base(base, versions_now, shown_now, labels):
    """Raise :class:`StaleEdit` when a value the form showed has changed since.

    ``base``: from :func:`read_edit_base`; ``versions_now``/``shown_now``: the same, read
    now (with the row locked, when saving). Changes of values the form does not show (the
    versions differ, the shown values do not) overwrite nothing, so they pass.
    """
    if base is None:
        raise ValidationError(_("This form is out of date. Open the customer again."), code="no_base")
    versions_then, shown_then = base
    if tuple(versions_then) == tuple(versions_now):
        return
    changes = [
        (name, labels.get(name, name), shown_then.get(name, ""), shown_now.get(name, ""))
        for name in shown_now
        if shown_then.get(name, "") != shown_now.get(name, "")
    ]
    if changes:
        raise StaleEdit(changes)
