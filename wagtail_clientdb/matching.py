"""Is this the same person? One rule for every way customers arrive: import, the admin's
booking form, the public booking page and the API.

A person is matched by external ID, then by email, then by phone (E.164, and its extension:
a switchboard's number names the person at the extension dialled), among the
customers the acting viewer may see, never among the others — in a branch's view by the
record's values and by the branch's own local ones. The keys are normalised as
:mod:`wagtail_clientdb.contact` stores them, so ``0170 1234567`` finds ``+49 170 1234567``.
An external ID that belongs to a customer the viewer cannot see is refused without saying
whose it is; an email or phone shared by several visible customers is no match but a
question to the user. A row of an import may also carry the record ID an export wrote (the
customer's number in this database): it names that customer, if visible, before any key.

A new person who is no match may still be someone already there under another email or a
misspelt name: :func:`possible_duplicates` names the visible customers who may be the same
person (same email or phone in a branch's local values, or a similar name with the same
birthday or the same end of the phone number), by the rules of :mod:`.duplicates`, which
the duplicate scan applies to all customers.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import bulk, duplicates, scope
from .contact import normalise_email, normalise_text, number_of, parse_phone, phone_extension, phone_identity
from .duplicates import Person, PossibleDuplicate  # noqa: F401 - part of this module's interface
from .models import Customer, CustomerOverride

EXTERNAL_ID, EMAIL, PHONE, RECORD_ID = "external_id", "email", "phone", "record_id"


@dataclass(frozen=True)
class IdentityKeys:
    """What identifies a person, normalised; ``None`` where not given (or unreadable)."""

    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    #: The customer's number in this database, from an export: it names the record itself.
    record_id: int | None = None

    @classmethod
    def from_input(cls, *, external_id="", email="", phone="", region=None):
        return cls(
            normalise_text((external_id or "").strip()) or None,
            normalise_email(email) or None,
            parse_phone(phone, region).identity if phone else None,
        )

    def __bool__(self):
        return bool(self.external_id or self.email or self.phone or self.record_id)


#: What a row with a record ID must share with the customer it names, one at least: the row is
#: an export's, edited, not a list of other people (from another database) that happens to hold
#: this database's numbers.
SHARED_WITH_THE_RECORD = ("first_name", "last_name", "email", "phone", "external_id")


def is_same_record(customer, fields, local_values=None):
    """Whether a row's ``fields`` (first and last name, email, phone, external ID: those it
    gives) may be an edit of ``customer``, whom its record ID names: one of them is the
    customer's, as stored or as ``local_values`` (a branch's) have it; a row that gives none of
    them may be too."""
    given = {name: fields[name] for name in SHARED_WITH_THE_RECORD if fields.get(name)}
    if not given:
        return True
    kept = [customer, local_values] if local_values is not None else [customer]
    return any(
        str(getattr(values, name, "") or "").casefold() == str(value).casefold() for values in kept for name, value in given.items()
    )


class NoSafeMatch(ValidationError):
    """The keys point at a customer that may not be used, or at several: ``{key: [message]}``."""


#: Why a branch's row with an external ID that finds none of its customers is refused: external
#: IDs are one namespace for the company, which only the head office writes (the API refuses
#: them from branch tokens too), so that no answer tells a branch that another one holds an ID.
EXTERNAL_IDS_ARE_THE_HEAD_OFFICES = gettext_lazy(
    "Only the head office gives customers external IDs: a branch's external ID finds one of its customers who has it."
)


#: Why a record ID finds nobody: the same answer whether another branch's customer has that
#: number or nobody does.
NO_SUCH_RECORD = gettext_lazy("No customer you can see has this record ID.")


class Candidates:
    """The customers some keys may mean, indexed by key (see :func:`candidates`)."""

    def __init__(self, customers, foreign_external_ids=(), *, sets_external_ids=True, local_values=()):
        self.customers = customers
        self.foreign_external_ids = set(foreign_external_ids)
        self.sets_external_ids = sets_external_ids
        self.by_external_id, self.by_email, self.by_phone = {}, {}, {}
        self.by_pk = by_pk = {customer.pk: customer for customer in customers}

        def index(customer, email, phone, phone_raw):
            if email and customer not in self.by_email.setdefault(email, []):
                self.by_email[email].append(customer)
            if phone:
                identity = phone_identity(phone, phone_extension(phone_raw, phone))
                if customer not in self.by_phone.setdefault(identity, []):
                    self.by_phone[identity].append(customer)

        for customer in customers:
            if customer.external_id:
                self.by_external_id[customer.external_id] = customer
            index(customer, customer.email, customer.phone, customer.phone_raw)
        # The branch's own values of its shared customers name them too: as the branch sees them.
        for customer_id, email, phone, phone_raw in local_values:
            if customer_id in by_pk:
                index(by_pk[customer_id], email, phone, phone_raw)

    def match(self, keys):
        """The customer ``keys`` mean, or ``None`` for a new person; raises :class:`NoSafeMatch`.
        A record ID names its customer whatever the other keys say (an export edited: a new
        email is that customer's), but an external ID stays one customer's."""
        if keys.record_id:
            customer = self.by_pk.get(keys.record_id)
            if customer is None:
                raise NoSafeMatch({RECORD_ID: [NO_SUCH_RECORD]})
            if keys.external_id and keys.external_id != customer.external_id:
                if keys.external_id in self.by_external_id or keys.external_id in self.foreign_external_ids:
                    raise NoSafeMatch({EXTERNAL_ID: [_("This external ID is another customer's.")]})
                if not self.sets_external_ids:
                    raise NoSafeMatch({EXTERNAL_ID: [EXTERNAL_IDS_ARE_THE_HEAD_OFFICES]})
            return customer
        if keys.external_id:
            if keys.external_id in self.by_external_id:
                return self.by_external_id[keys.external_id]
            if not self.sets_external_ids:
                # The same answer whether another branch's customer has it or nobody does.
                raise NoSafeMatch({EXTERNAL_ID: [EXTERNAL_IDS_ARE_THE_HEAD_OFFICES]})
            if keys.external_id in self.foreign_external_ids:
                raise NoSafeMatch({EXTERNAL_ID: [_("This external ID cannot be used.")]})
        for key, value, index in ((EMAIL, keys.email, self.by_email), (PHONE, keys.phone, self.by_phone)):
            if not value or value not in index:
                continue
            # A customer with another external ID is another person, whatever else they share.
            matches = [c for c in index[value] if not (keys.external_id and c.external_id and c.external_id != keys.external_id)]
            if len(matches) > 1:
                raise NoSafeMatch(
                    {key: [_("Matches %(count)d customers; add an external ID to say which one.") % {"count": len(matches)}]}
                )
            if matches:
                return matches[0]
        return None


def candidates(visible, many_keys, *, lock=False, prepare=None, sets_external_ids=True, branch=None):
    """The customers of ``visible`` that any of ``many_keys`` may mean, for :meth:`Candidates.match`.
    ``sets_external_ids``: whether the keys' external IDs may be given to customers (the head
    office's); else an external ID only finds a visible customer who has it. ``branch``: the
    branch whose local email and phone values name its customers too (a branch's view).

    Each key value is looked up by index; then the visible ones are loaded in one query
    (locked, with ``lock``, for a write that follows; ``prepare`` may add to the query).
    """
    many_keys = list(many_keys)
    pks = set()
    local = CustomerOverride.objects.filter(branch=branch)
    local_pks = set()
    for column in (EXTERNAL_ID, EMAIL, PHONE):
        values = {getattr(keys, column) for keys in many_keys} - {None}
        if column == PHONE:
            values = set(map(number_of, values))
        if values:
            pks |= bulk.pks_with_values(Customer, column, values)
            if branch is not None and column != EXTERNAL_ID:
                local_pks |= set(local.filter(**{f"{column}__in": values}).values_list("customer_id", flat=True))
    pks |= local_pks
    pks |= {keys.record_id for keys in many_keys} - {None}
    customers = []
    if pks:
        queryset = visible.filter(bulk.any_of("id", pks)).order_by()
        if lock:
            queryset = queryset.select_for_update(of=("self",))
        customers = list(prepare(queryset) if prepare else queryset)
    external_ids = {keys.external_id for keys in many_keys} - {None}
    unseen = external_ids - {customer.external_id for customer in customers}
    foreign = set()
    if unseen and sets_external_ids:
        foreign = set(Customer.objects.filter(bulk.any_of("external_id", unseen, "text")).values_list("external_id", flat=True))
    local_values = ()
    if local_pks:
        local_values = local.filter(customer_id__in=local_pks).values_list("customer_id", "email", "phone", "phone_raw")
    return Candidates(customers, foreign, sets_external_ids=sets_external_ids, local_values=local_values)


#: The namespaces of the app's advisory locks (any numbers unlikely to be another app's): the
#: keys of a person, and confirmed imports.
IDENTITY_LOCKS = 0x434C4442
IMPORT_LOCKS = 0x434C4443


def lock_identity(keys):
    """Let requests that may create the same person take turns: two bookings with one email at
    the same moment would otherwise both find nobody and both create a customer. PostgreSQL's
    advisory locks last until the transaction ends, after the customer is written; SQLite
    writes one transaction at a time anyway. Taken in a fixed order, so no two requests
    wait for each other."""
    if connection.vendor != "postgresql":
        return
    values = sorted(f"{column}:{getattr(keys, column)}" for column in (EXTERNAL_ID, EMAIL, PHONE) if getattr(keys, column))
    with connection.cursor() as cursor:
        for value in values:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [IDENTITY_LOCKS, value])


def lock_for_import():
    """A confirmed import (a file, the API's bulk import) may create any number of people, too
    many to lock each one's keys: it holds this one lock until it commits instead, and whoever
    is about to create a person found nowhere waits for it (:func:`wait_for_imports`), then
    looks again. Imports take turns too."""
    _advisory_lock("pg_advisory_xact_lock")


def wait_for_imports():
    """Wait until a confirmed import that is writing has committed or rolled back: the people
    it creates are invisible until then. Shared: creations do not wait for each other (their
    keys' locks order them, :func:`lock_identity`)."""
    _advisory_lock("pg_advisory_xact_lock_shared")


def _advisory_lock(function):
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, 0)", [IMPORT_LOCKS])


def find_customer(viewer, keys, *, lock=False):
    """The visible customer ``keys`` mean, ``None`` for a new person; raises :class:`NoSafeMatch`.

    With ``lock`` (a write follows, maybe the creation of the person), the keys are locked
    first (:func:`lock_identity`), then the customer found; a person found nowhere is looked
    for again once no import is writing (:func:`wait_for_imports`)."""
    if not keys:
        return None
    if lock:
        lock_identity(keys)
    found = candidates(scope.visible_customers(viewer), [keys], lock=lock, branch=viewer.branch).match(keys)
    if found is None and lock and connection.vendor == "postgresql":
        wait_for_imports()
        found = candidates(scope.visible_customers(viewer), [keys], lock=lock, branch=viewer.branch).match(keys)
    return found


def possible_duplicates(viewer, people, *, limit=5, exclude=(), unmatched=False):
    """For each of ``people`` (new customers, :class:`Person`): up to ``limit`` customers visible
    to ``viewer`` who may be the same person, best first (:class:`PossibleDuplicate`); customers
    whose ids are in ``exclude`` are left out. ``unmatched``: :func:`candidates` found no match
    for any of ``people`` (see :func:`.duplicates.find`)."""
    return duplicates.find(viewer, people, limit=limit, exclude=exclude, unmatched=unmatched)


def possible_duplicates_of(viewer, customer, *, limit=5):
    """The customers visible to ``viewer`` whom ``customer``, just created, may be (best first):
    what a client that creates customers without a form to warn in (the API) is told."""
    (found,) = possible_duplicates(viewer, [Person.of(customer)], limit=limit, exclude=[customer.pk])
    return found
