"""Possible duplicates: the same person entered twice (at the desk, by an online booking, by
an import). Used through :mod:`wagtail_clientdb.matching`, the identity module.

Two customers may be the same person when they have

* the same email (as stored: normalised), or
* the same phone number (E.164), or
* similar names and the same birthday, or
* similar names and the same end of the phone number: its last :data:`SUFFIX_DIGITS` digits
  (the same number with another area or country code, or typed so that it could not be read).

Names are *similar* when the trigram similarity of the full names reaches
``WAGTAIL_CLIENTDB["DUPLICATE_NAME_SIMILARITY"]`` (0.5). The full name is first and last
name with accents folded ("Müller" and "Muller", "Yılmaz" and "Yilmaz" are the same); the
order of the words does not count. On PostgreSQL the similarity is pg_trgm's
``similarity()``; elsewhere :func:`similarity` computes the same in Python.

Customers are compared by their own values and by the values each branch sees (its local
values over the record's, :mod:`wagtail_clientdb.overrides`). A match found only in a
branch's local values is known to that branch and to the head office only.

A value shared by many customers is a placeholder (``info@…``, a birthday of 1 January
1900), not the sign of one person: a value shared by more customers than
:data:`GROUP_LIMITS` allows is not used; for birthdays, the limit grows with the number of
customers (:func:`group_limit`).

Four users: the admin's form for a new customer (:func:`find`, a warning before saving),
the import preview (:func:`find` for each chunk's new rows), the API (:func:`find` for the
customers a call created, named in its answer) and the duplicate scan (:func:`scan`), which
fills the "Possible duplicates" list with :class:`DuplicatePair` rows.
"""

import logging
import re
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Right
from django.utils import timezone
from wagtail.log_actions import log

from . import bulk, conf, scope
from .models import Customer, CustomerOverride, DuplicatePair, DuplicateReason, DuplicateRule

logger = logging.getLogger(__name__)

#: How many digits at the end of two phone numbers must be the same for the name-and-phone rule.
SUFFIX_DIGITS = 7
#: A value shared by more customers than this is taken for a placeholder and not used (for
#: birthdays, the least limit: see :func:`group_limit`).
GROUP_LIMITS = {"email": 20, "phone": 20, "birthday": 20, "suffix": 50}
#: A birthday shared by more than this many times the customers of an average birthday is a placeholder.
BIRTHDAY_LIMIT_FACTOR = 5
_BIRTHDAY_LIMIT_CACHE_KEY = "wagtail_clientdb.duplicates.birthday_limit"
#: The rules (plain strings: the values of :class:`DuplicateRule`), most telling first.
EMAIL, PHONE, NAME_BIRTHDAY, NAME_PHONE = (rule.value for rule in DuplicateRule)
RULES = (EMAIL, PHONE, NAME_BIRTHDAY, NAME_PHONE)
#: Which key each name rule needs to be the same.
NAME_RULES = ((NAME_BIRTHDAY, "birthday"), (NAME_PHONE, "suffix"))
#: Serialises scans on PostgreSQL (pg_advisory_xact_lock).
SCAN_LOCK = 0x636C6462_6475  # "cldb" "du"


def threshold():
    return conf.get("DUPLICATE_NAME_SIMILARITY")


def group_limit(attribute, *, fresh=False):
    """How many customers may share a value of ``attribute`` before it counts as a placeholder.

    Many people share a birthday in a large database (at a million customers, a day has
    about 30), so a birthday is a placeholder when it has :data:`BIRTHDAY_LIMIT_FACTOR` times
    the customers of a typical birthday (the median of the days that are someone's birthday,
    which a placeholder does not move), and at least ``GROUP_LIMITS["birthday"]``. It is counted
    by each scan (``fresh``) and kept in the cache for the lookups between.
    """
    if attribute != "birthday":
        return GROUP_LIMITS[attribute]
    found = None if fresh else cache.get(_BIRTHDAY_LIMIT_CACHE_KEY)
    if found is None:
        per_day = sorted(
            Customer.objects.exclude(birthday=None).order_by().values("birthday").annotate(n=Count("pk")).values_list("n", flat=True)
        )
        typical = per_day[(len(per_day) - 1) // 2] if per_day else 0
        found = max(GROUP_LIMITS["birthday"], BIRTHDAY_LIMIT_FACTOR * typical)
        cache.set(_BIRTHDAY_LIMIT_CACHE_KEY, found, 24 * 3600)
    return found


# --- Names and phone numbers as compared -----------------------------------------------------------------


def _fold_map():
    """Latin letters with accents → their base letter (one character each, as SQL's ``translate`` needs)."""
    folded = {}
    for code in range(0xC0, 0x180):
        char = chr(code)
        base = unicodedata.normalize("NFKD", char)[0]
        if base != char and base.isascii() and base.isalpha():
            folded[char] = base
    folded.update({"ß": "s", "ı": "i", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
                   "æ": "a", "Æ": "A", "œ": "o", "Œ": "O"})
    return folded


_FOLD = _fold_map()
FOLD_FROM, FOLD_TO = "".join(_FOLD), "".join(_FOLD.values())
_FOLD_TABLE = str.maketrans(_FOLD)
_WORD = re.compile(r"[^\W_]+")
_NOT_DIGIT = re.compile(r"[^0-9]")


def name_key(first_name, last_name):
    """The full name as compared: accents folded, lower case ("" when there is none)."""
    name = f"{first_name or ''} {last_name or ''}".strip()
    # Only letters beyond ASCII are folded; most names have none, and translate() walks every character.
    return (name if name.isascii() else name.translate(_FOLD_TABLE)).lower()


def phone_suffix(phone, phone_raw=""):
    """The last digits of a number (of its E.164 form, else of the number as typed); "" when shorter."""
    digits = _NOT_DIGIT.sub("", phone or phone_raw or "")
    return digits[-SUFFIX_DIGITS:] if len(digits) >= SUFFIX_DIGITS else ""


def trigrams(text):
    """pg_trgm's trigrams of ``text``: each word (letters and digits) lower-cased, padded with
    two spaces in front and one behind, cut into every run of three characters."""
    grams = set()
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def similarity(a, b):
    """pg_trgm's ``similarity(a, b)``: shared trigrams / all trigrams of both (0–1)."""
    first, second = trigrams(a), trigrams(b)
    if not first or not second:
        return 0.0
    shared = len(first & second)
    return shared / (len(first) + len(second) - shared)


def similarities(pairs):
    """The similarity of each ``(name, name)`` of ``pairs``: pg_trgm's on PostgreSQL, in one query."""
    pairs = list(pairs)
    if not pairs:
        return []
    if connection.vendor != "postgresql":
        return [similarity(a, b) for a, b in pairs]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT similarity(a, b) FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(a, b, n) ORDER BY n",
            [bulk._text_array(a for a, _b in pairs), bulk._text_array(b for _a, b in pairs)],
        )
        return [row[0] for row in cursor.fetchall()]


# SQL of the same: the suffix expression is also the one of migration 0015's indexes (keep them alike).
def _suffix_sql(phone, phone_raw):
    return f"right(regexp_replace(COALESCE(NULLIF({phone}, ''), {phone_raw}), '[^0-9]', '', 'g'), {SUFFIX_DIGITS})"


def _name_sql(first_name, last_name):
    return (
        f"lower(translate(btrim(COALESCE({first_name}, '') || ' ' || COALESCE({last_name}, '')), "
        f"'{FOLD_FROM}', '{FOLD_TO}'))"
    )


# --- The keys of a customer --------------------------------------------------------------------------------


class Keys(NamedTuple):
    """What a customer is compared by, as the records say (``branch_id`` ``None``) or as a branch sees it.

    A tuple: a scan makes one for every customer, an import's preview one for every new row
    (a frozen dataclass took about three times as long to make)."""

    customer_id: int
    branch_id: int | None
    email: str
    phone: str
    suffix: str
    name: str
    birthday: object


RECORD_COLUMNS = ("pk", "email", "phone", "phone_raw", "first_name", "last_name", "birthday")
OVERRIDE_COLUMNS = (
    "customer_id", "branch_id", "email", "phone", "phone_raw", "first_name", "last_name", "birthday",
    "customer__email", "customer__phone", "customer__phone_raw", "customer__first_name", "customer__last_name",
    "customer__birthday",
)
#: Local values that change what a customer is compared by.
OVERRIDES_WITH_KEYS = (
    Q(email__isnull=False) | Q(phone_raw__isnull=False) | Q(first_name__isnull=False)
    | Q(last_name__isnull=False) | Q(birthday__isnull=False)
)


def record_keys(rows):
    """Keys from ``values_list(*RECORD_COLUMNS)`` rows of customers."""
    for pk, email, phone, phone_raw, first_name, last_name, birthday in rows:
        yield Keys(pk, None, email or "", phone or "", phone_suffix(phone, phone_raw), name_key(first_name, last_name), birthday)


def override_keys(overrides):
    """Keys of customers as the branches of ``overrides`` (a queryset of local values) see them."""

    def local(value, record):
        return record if value is None else value

    for row in overrides.filter(OVERRIDES_WITH_KEYS).values_list(*OVERRIDE_COLUMNS):
        customer_id, branch_id, email, phone, raw, first, last, birthday, *record = row
        r_email, r_phone, r_raw, r_first, r_last, r_birthday = record
        phone, raw = (r_phone, r_raw) if raw is None else (phone or "", raw)
        yield Keys(
            customer_id,
            branch_id,
            local(email, r_email) or "",
            phone or "",
            phone_suffix(phone, raw),
            name_key(local(first, r_first), local(last, r_last)),
            local(birthday, r_birthday),
        )


# --- Pairs found --------------------------------------------------------------------------------------------


class Found:
    """Pairs of customers and why: ``{(a, b): {(rule, branch id or None): similarity or None}}``, a < b."""

    def __init__(self):
        self.pairs = defaultdict(dict)

    def add(self, a, b, rule, branch_id, similarity=None):
        if a > b:
            a, b = b, a
        reasons = self.pairs[(a, b)]
        key = (DuplicateRule(rule).value, branch_id)
        if key not in reasons or (similarity or 0) > (reasons[key] or 0):
            reasons[key] = None if similarity is None else round(float(similarity), 4)

    def finished(self):
        """The pairs with what a branch's local values add beyond the records, and no "similar name
        and same end of phone number" where the whole number is the same."""
        for pair, reasons in self.pairs.items():
            self.pairs[pair] = simplified(reasons)
        return self.pairs


def simplified(reasons):
    kept = {}
    for (rule, branch_id), value in reasons.items():
        if branch_id is not None and (rule, None) in reasons:
            continue
        if rule == NAME_PHONE and ((PHONE, branch_id) in reasons or (PHONE, None) in reasons):
            continue
        kept[(rule, branch_id)] = value
    return kept


def score(reasons):
    """1.0 for the same email or phone number, else the highest name similarity."""
    return max(((value if value is not None else 1.0) for value in reasons.values()), default=0.0)


def _compatible(a, b):
    """Keys that can be compared: two customers, seen in the records or in one branch."""
    return a.customer_id != b.customer_id and (a.branch_id is None or b.branch_id is None or a.branch_id == b.branch_id)


def _grouped(keys, attribute, limit):
    """Keys with the same non-empty value of ``attribute``, for values of 2 to ``limit`` customers."""
    groups = defaultdict(list)
    for key in keys:
        value = getattr(key, attribute)
        if value:
            groups[value].append(key)
    for members in groups.values():
        if 2 <= len({key.customer_id for key in members}) <= limit:
            yield members


def _pairs_within(members):
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            if _compatible(a, b):
                yield a, b


def found_in_python(keys, name_similarity=None):
    """Every pair among ``keys`` that meets a rule (the scan on SQLite; on PostgreSQL, :func:`found_by_sql`)."""
    name_similarity = threshold() if name_similarity is None else name_similarity
    keys = list(keys)
    found = Found()
    for rule, attribute in ((EMAIL, "email"), (PHONE, "phone")):
        for members in _grouped(keys, attribute, group_limit(attribute)):
            for a, b in _pairs_within(members):
                found.add(a.customer_id, b.customer_id, rule, a.branch_id or b.branch_id)
    named = [key for key in keys if key.name]
    for rule, attribute in NAME_RULES:
        compared = [pair for members in _grouped(named, attribute, group_limit(attribute)) for pair in _pairs_within(members)]
        for (a, b), value in zip(compared, similarities((a.name, b.name) for a, b in compared)):
            if value >= name_similarity:
                found.add(a.customer_id, b.customer_id, rule, a.branch_id or b.branch_id, value)
    return found.finished()


def all_keys():
    """The keys of every customer, as the records say and as each branch with local values sees it."""
    yield from record_keys(Customer.objects.order_by().values_list(*RECORD_COLUMNS).iterator(chunk_size=5000))
    yield from override_keys(CustomerOverride.objects.order_by())


def found_by_sql(name_similarity=None):
    """What :func:`found_in_python` finds, in PostgreSQL: the keys of every customer in a temporary
    table, then one GROUP BY for the same email or phone, and a self-join on the same birthday or
    end of phone number with pg_trgm's similarity of the names."""
    name_similarity = threshold() if name_similarity is None else name_similarity
    quote = connection.ops.quote_name
    customers, overrides = quote(Customer._meta.db_table), quote(CustomerOverride._meta.db_table)
    found = Found()
    # The temporary table lives until the end of the transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS clientdb_duplicate_keys")
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE clientdb_duplicate_keys ON COMMIT DROP AS
            SELECT c.id AS customer_id, NULL::bigint AS branch_id, c.email::text AS email, c.phone::text AS phone,
                   {_suffix_sql("c.phone", "c.phone_raw")} AS suffix,
                   {_name_sql("c.first_name", "c.last_name")} AS name, c.birthday
            FROM {customers} c
            UNION ALL
            SELECT o.customer_id, o.branch_id, COALESCE(o.email, c.email),
                   CASE WHEN o.phone_raw IS NULL THEN c.phone ELSE COALESCE(o.phone, '') END,
                   CASE WHEN o.phone_raw IS NULL THEN {_suffix_sql("c.phone", "c.phone_raw")}
                        ELSE {_suffix_sql("COALESCE(o.phone, '')", "o.phone_raw")} END,
                   {_name_sql("COALESCE(o.first_name, c.first_name)", "COALESCE(o.last_name, c.last_name)")},
                   COALESCE(o.birthday, c.birthday)
            FROM {overrides} o JOIN {customers} c ON c.id = o.customer_id
            WHERE o.email IS NOT NULL OR o.phone_raw IS NOT NULL OR o.first_name IS NOT NULL
               OR o.last_name IS NOT NULL OR o.birthday IS NOT NULL
            """
        )
        cursor.execute("ANALYZE clientdb_duplicate_keys")
        for rule, column in ((EMAIL, "email"), (PHONE, "phone")):
            cursor.execute(
                f"""
                SELECT array_agg(customer_id), array_agg(branch_id) FROM clientdb_duplicate_keys
                WHERE {column} <> '' GROUP BY {column} HAVING count(DISTINCT customer_id) BETWEEN 2 AND %s
                """,
                [group_limit(column)],
            )
            for customer_ids, branch_ids in cursor.fetchall():
                members = [Keys(c, b, "", "", "", "", None) for c, b in zip(customer_ids, branch_ids)]
                for a, b in _pairs_within(members):
                    found.add(a.customer_id, b.customer_id, rule, a.branch_id or b.branch_id)
        for rule, column in NAME_RULES:
            usable = f"length(suffix) = {SUFFIX_DIGITS}" if column == "suffix" else "birthday IS NOT NULL"
            cursor.execute(
                f"""
                WITH shared AS (
                    SELECT {column} AS value FROM clientdb_duplicate_keys WHERE {usable} AND name <> ''
                    GROUP BY {column} HAVING count(DISTINCT customer_id) BETWEEN 2 AND %(limit)s
                ), named AS (
                    SELECT k.* FROM clientdb_duplicate_keys k JOIN shared ON k.{column} = shared.value
                    WHERE k.name <> ''
                )
                SELECT a.customer_id, b.customer_id, COALESCE(a.branch_id, b.branch_id), s.similarity
                FROM named a
                JOIN named b ON b.{column} = a.{column} AND a.customer_id < b.customer_id
                    AND (a.branch_id IS NULL OR b.branch_id IS NULL OR a.branch_id = b.branch_id)
                CROSS JOIN LATERAL (SELECT similarity(a.name, b.name) AS similarity) s
                WHERE s.similarity >= %(threshold)s
                """,
                {"limit": group_limit(column), "threshold": name_similarity},
            )
            for a, b, branch_id, value in cursor.fetchall():
                found.add(a, b, rule, branch_id, value)
    return found.finished()


# --- The duplicate scan -------------------------------------------------------------------------------------


@dataclass
class ScanResult:
    found: int = 0
    new: int = 0
    changed: int = 0
    gone: int = 0
    seconds: float = 0.0


def scan():
    """Look for possible duplicates among all customers and keep them for the admin's list.

    New pairs are added, pairs whose reasons changed are updated, and pairs no longer found
    (someone corrected an email, a customer was merged) are removed; pairs marked "not a
    duplicate" stay as they are. On PostgreSQL, scans run one at a time.
    """
    started = time.perf_counter()
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                group_limit("birthday", fresh=True)
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SCAN_LOCK])
                    found = found_by_sql()
                else:
                    found = found_in_python(all_keys())
                result = store(found)
            break
        except IntegrityError:
            # A customer deleted while the scan ran: once more, without it.
            if attempt == 2:
                raise
            logger.info("Duplicate scan: a customer went away meanwhile; scanning again")
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def store(found):
    """Make the stored pairs what ``found`` says (see :func:`scan`); returns a :class:`ScanResult`."""
    result = ScanResult()
    existing = {
        (a, b): (pk, dismissed)
        for pk, a, b, dismissed in DuplicatePair.objects.values_list("pk", "customer_a_id", "customer_b_id", "dismissed")
    }
    open_pairs = [pk for pk, dismissed in existing.values() if not dismissed]
    stored_reasons = defaultdict(dict)
    for pair_id, rule, branch_id, value in DuplicateReason.objects.filter(bulk.any_of("pair_id", open_pairs)).values_list(
        "pair_id", "rule", "branch_id", "similarity"
    ):
        stored_reasons[pair_id][(rule, branch_id)] = value

    new_pairs, rewritten = [], {}
    for (a, b), reasons in found.items():
        if (a, b) not in existing:
            new_pairs.append(DuplicatePair(customer_a_id=a, customer_b_id=b, score=score(reasons)))
            continue
        pk, dismissed = existing[(a, b)]
        if not dismissed and stored_reasons.get(pk) != reasons:
            rewritten[pk] = reasons
    gone = [pk for pair, (pk, dismissed) in existing.items() if not dismissed and pair not in found]

    DuplicatePair.objects.filter(bulk.any_of("pk", gone)).delete()
    DuplicateReason.objects.filter(bulk.any_of("pair_id", list(rewritten))).delete()
    for pk, reasons in rewritten.items():
        DuplicatePair.objects.filter(pk=pk).update(score=score(reasons))
    DuplicatePair.objects.bulk_create(new_pairs, batch_size=1000)
    reasons_of = {**rewritten, **{pair.pk: found[(pair.customer_a_id, pair.customer_b_id)] for pair in new_pairs}}
    DuplicateReason.objects.bulk_create(
        (
            DuplicateReason(pair_id=pk, rule=rule, branch_id=branch_id, similarity=value)
            for pk, reasons in reasons_of.items()
            for (rule, branch_id), value in reasons.items()
        ),
        batch_size=1000,
    )
    result.new, result.changed, result.gone = len(new_pairs), len(rewritten), len(gone)
    result.found = sum(1 for pair in found if not existing.get(pair, (None, False))[1])
    return result


# --- New customers: who they may already be -----------------------------------------------------------------


class Person(NamedTuple):
    """A customer about to be created, by the values given (normalised as stored)."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""
    #: E.164; "" when not given or unreadable.
    phone: str = ""
    #: As typed.
    phone_raw: str = ""
    birthday: object = None

    @classmethod
    def from_values(cls, values):
        """An import's row, by its checked values (a field it leaves out or empty: the default)."""
        return cls._make([values.get(name) or default for name, default in cls._field_defaults.items()])

    @classmethod
    def of(cls, customer):
        """A saved customer, by the values of its record."""
        return cls._make([getattr(customer, name) or default for name, default in cls._field_defaults.items()])

    def keys(self):
        return Keys(
            0, None, self.email or "", self.phone or "", phone_suffix(self.phone, self.phone_raw),
            name_key(self.first_name, self.last_name), self.birthday,
        )



@dataclass
class PossibleDuplicate:
    """A visible customer that a new one may be, and why: ``reasons`` maps ``(rule, branch id or
    None)`` to the names' similarity (``None`` for the email and phone rules)."""

    customer: Customer
    reasons: dict = field(default_factory=dict)

    @property
    def score(self):
        return score(self.reasons)

    @property
    def rules(self):
        """The rules met, most telling first."""
        met = {rule for rule, _branch in self.reasons}
        return [rule for rule in RULES if rule in met]


def find(viewer, people, *, limit=5, exclude=(), unmatched=False):
    """For each of ``people``: up to ``limit`` customers visible to ``viewer`` who may be the same
    person (:class:`PossibleDuplicate`, best first), by the records' values and the local values
    of the viewer's branch (of every branch, for the head office). Customers in ``exclude`` (ids)
    are not considered.

    ``unmatched``: the identity rule has already looked for ``people`` among the viewer's
    customers and found nobody (an import's new rows), so no visible record has their email
    or phone number but one with another external ID, which that rule calls another person:
    those two lookups are left out.
    """
    people = list(people)
    results = [[] for _person in people]
    wanted = [person.keys() for person in people]
    if viewer.sees_nothing or not any(_lookup_values(wanted).values()):
        return results
    branches = None if viewer.is_central else [branch.pk for branch in viewer.branches]
    skipped = ("email", "phone") if unmatched else ()
    candidate_ids = _candidate_ids(_lookup_values(wanted), branches, skipped) - set(exclude)
    if not candidate_ids:
        return results
    customers = {
        customer.pk: customer
        for customer in scope.visible_customers(viewer).filter(bulk.any_of("id", candidate_ids)).order_by()
    }
    if not customers:
        return results
    local_values = CustomerOverride.objects.filter(bulk.any_of("customer_id", list(customers))).order_by()
    if branches is not None:
        local_values = local_values.filter(branch_id__in=branches)
    keys = [
        *record_keys((c.pk, c.email, c.phone, c.phone_raw, c.first_name, c.last_name, c.birthday) for c in customers.values()),
        *override_keys(local_values),
    ]
    indexes = {attribute: defaultdict(list) for attribute in ("email", "phone", "birthday", "suffix")}
    for key in keys:
        for attribute, index in indexes.items():
            if getattr(key, attribute):
                index[getattr(key, attribute)].append(key)

    limits = {attribute: group_limit(attribute) for attribute in indexes}

    def sharing(person_keys, attribute):
        value = getattr(person_keys, attribute)
        members = indexes[attribute].get(value, []) if value else []
        # The person is one more customer with the value.
        if len({key.customer_id for key in members}) + 1 > limits[attribute]:
            return []
        return members

    found = [defaultdict(dict) for _person in people]
    name_checks = []
    for number, person_keys in enumerate(wanted):
        for rule, attribute in ((EMAIL, "email"), (PHONE, "phone")):
            for key in sharing(person_keys, attribute):
                found[number][key.customer_id][(rule, key.branch_id)] = None
        if person_keys.name:
            for rule, attribute in NAME_RULES:
                name_checks += [(number, key, rule) for key in sharing(person_keys, attribute) if key.name]
    name_similarity = threshold()
    values = similarities((wanted[number].name, key.name) for number, key, _rule in name_checks)
    for (number, key, rule), value in zip(name_checks, values):
        if value >= name_similarity:
            reasons = found[number][key.customer_id]
            reasons[(rule, key.branch_id)] = max(round(float(value), 4), reasons.get((rule, key.branch_id)) or 0)
    for number, by_customer in enumerate(found):
        matches = [PossibleDuplicate(customers[pk], simplified(reasons)) for pk, reasons in by_customer.items()]
        matches.sort(key=lambda match: (-match.score, match.customer.pk))
        results[number] = matches[:limit]
    return results


def _lookup_values(wanted):
    named = [keys for keys in wanted if keys.name]
    return {
        "email": sorted({keys.email for keys in wanted if keys.email}),
        "phone": sorted({keys.phone for keys in wanted if keys.phone}),
        "birthday": sorted({keys.birthday for keys in named if keys.birthday}),
        "suffix": sorted({keys.suffix for keys in named if keys.suffix}),
    }


def _candidate_ids(values, branches, skipped=()):
    """Ids of the customers whose own values (but for the ``skipped`` attributes), or whose local
    values in ``branches`` (``None``: any branch), hold one of ``values`` (attribute → values):
    through indexes, one lookup each."""
    if connection.vendor == "postgresql":
        return _candidate_ids_sql(values, branches, skipped)
    found = set()
    by_value, by_record_value = Q(), Q()
    for attribute in ("email", "phone", "birthday"):
        if values[attribute]:
            by_value |= Q(**{f"{attribute}__in": values[attribute]})
            if attribute not in skipped:
                by_record_value |= Q(**{f"{attribute}__in": values[attribute]})
    local_values = CustomerOverride.objects.all() if branches is None else CustomerOverride.objects.filter(branch_id__in=branches)
    if by_record_value:
        found |= set(Customer.objects.filter(by_record_value).values_list("pk", flat=True))
    if by_value:
        found |= set(local_values.filter(by_value).values_list("customer_id", flat=True))
    if values["suffix"]:
        suffixes = set(values["suffix"])
        found |= set(
            Customer.objects.annotate(suffix=Right("phone", SUFFIX_DIGITS))
            .filter(suffix__in=suffixes)
            .values_list("pk", flat=True)
        )
        # Numbers that could not be read: few, so their digits are compared here.
        for pk, raw in Customer.objects.filter(phone="").exclude(phone_raw="").values_list("pk", "phone_raw"):
            if phone_suffix("", raw) in suffixes:
                found.add(pk)
        for pk, phone, raw in local_values.exclude(phone_raw=None).values_list("customer_id", "phone", "phone_raw"):
            if phone_suffix(phone, raw) in suffixes:
                found.add(pk)
    return found


def _candidate_ids_sql(values, branches, skipped=()):
    quote = connection.ops.quote_name
    customers, overrides = quote(Customer._meta.db_table), quote(CustomerOverride._meta.db_table)
    lookups = [
        ("email", "c.email", "text"),
        ("phone", "c.phone", "text"),
        ("birthday", "c.birthday", "date"),
        ("suffix", _suffix_sql("c.phone", "c.phone_raw"), "text"),
    ]
    # Arrays in their text form: cheaper to build than the driver's adaptation item by item.
    arrays = {
        attribute: bulk._text_array(str(value) for value in values[attribute])
        for attribute, _expression, _type in lookups
        if values[attribute]
    }
    parts, params = [], []
    for attribute, expression, array_type in lookups:
        if values[attribute] and attribute not in skipped:
            # One index lookup per value (OFFSET 0 keeps the planner from flattening it into a scan).
            parts.append(
                f"SELECT found.id FROM unnest(%s::{array_type}[]) AS wanted(value) CROSS JOIN LATERAL "
                f"(SELECT c.id FROM {customers} c WHERE {expression} = wanted.value OFFSET 0) AS found"
            )
            params.append(arrays[attribute])
    for attribute, _expression, array_type in lookups:
        if values[attribute]:
            # The partial indexes of migration 0015 (local values are few: an array lookup will do).
            if attribute == "suffix":
                condition = f"o.phone_raw IS NOT NULL AND {_suffix_sql('o.phone', 'o.phone_raw')}"
            else:
                condition = f"o.{attribute} IS NOT NULL AND o.{attribute}"
            in_branches = "" if branches is None else "AND o.branch_id = ANY(%s::bigint[])"
            parts.append(f"SELECT o.customer_id FROM {overrides} o WHERE {condition} = ANY(%s::{array_type}[]) {in_branches}")
            params += [arrays[attribute]] + ([bulk._bigint_array(branches)] if branches is not None else [])
    with connection.cursor() as cursor:
        cursor.execute(" UNION ".join(parts), params)
        return {row[0] for row in cursor.fetchall()}


# --- The list of possible duplicates -----------------------------------------------------------------------


def visible_reasons(viewer, queryset=None):
    """Reasons a viewer may know: those in the records, and those of its branches' local values."""
    queryset = DuplicateReason.objects.all() if queryset is None else queryset
    if viewer.is_central:
        return queryset
    return queryset.filter(Q(branch__isnull=True) | Q(branch__in=[branch.pk for branch in viewer.branches]))


def visible_pairs(viewer, queryset=None):
    """The open pairs a viewer may see: both customers visible to it, for a reason it may know."""
    queryset = (DuplicatePair.objects.all() if queryset is None else queryset).filter(dismissed=False)
    if viewer.is_central:
        return queryset
    if viewer.sees_nothing:
        return queryset.none()
    customers = scope.visible_customers(viewer).values("pk")
    reasons = visible_reasons(viewer, DuplicateReason.objects.filter(pair=OuterRef("pk")))
    return queryset.filter(customer_a__in=customers, customer_b__in=customers).filter(Exists(reasons))


@transaction.atomic
def dismiss(pair, user=None):
    """"Not a duplicate": the pair is never listed again. Logged on both customers."""
    changed = DuplicatePair.objects.filter(pk=pair.pk, dismissed=False).update(
        dismissed=True, dismissed_by=user, dismissed_at=timezone.now()
    )
    if changed:
        pair.dismissed = True
        for customer, other in ((pair.customer_a, pair.customer_b), (pair.customer_b, pair.customer_a)):
            log(customer, "wagtail_clientdb.not_a_duplicate", user=user, data={"other_customer": other.pk})
    return bool(changed)
