"""The Client DB API on Wagtail's API v3 (django-ninja), mounted at ``<v3>/clientdb/``.

A thin layer: every rule lives in the domain modules (scope, overrides, changes, matching,
registration, booking, deletion, imports). Every request acts as the bearer token's user,
with exactly that user's permissions and branch scope; the errors are Wagtail's
``application/problem+json`` with field-level messages.
"""

import datetime
import functools
import hashlib
import io
import json
from collections import Counter

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from ninja.decorators import decorate_view
from ninja.errors import HttpError
from ninja.pagination import paginate
from ninja.throttling import SimpleRateThrottle
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError
from wagtail.api.v3.auth import BearerTokenAuth
from wagtail.api.v3.errors import problem_response
from wagtail.api.v3.pagination import WagtailLimitOffsetPagination
from wagtail.log_actions import LogContext, log
from wagtail.permissions import policy_registry

from ... import audit as audit_trail
from ... import archive, attribute_types, attributes, booking, changes, conf, deletion, groups, import_rollback, listing, matching, registration, removals, scope, segments, sync, times
from ... import tags as tag_names
from ...imports.records import import_records
from ...imports.runner import gc_frozen
from ...page_queries import page_view
from ...permissions import ANY_ACTION
from ...models import (
    ApiIdempotencyKey,
    Appointment,
    AppointmentSource,
    AppointmentStatus,
    AttributeTarget,
    Branch,
    ConsentChannel,
    Customer,
    CustomerGroup,
    CustomerOverride,
    CustomerSource,
    Segment,
    Service,
    TaggedCustomer,
)
from . import schemas



class TokenRateThrottle(SimpleRateThrottle):
    """At most ``WAGTAIL_CLIENTDB["API_RATE_LIMIT"]`` requests per token (read on every request)."""

    scope = "wagtail_clientdb_api"

    def __init__(self):
        super().__init__(conf.get("API_RATE_LIMIT"))

    def allow_request(self, request):
        self.rate = conf.get("API_RATE_LIMIT")
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)

    def get_cache_key(self, request):
        token = getattr(request, "auth", None)
        return self.cache_format % {"scope": self.scope, "ident": getattr(token, "pk", None) or self.get_ident(request)}


router = Router(tags=["clientdb"], auth=BearerTokenAuth(), throttle=[TokenRateThrottle()])


# --- Who is asking --------------------------------------------------------------------------------------


def field_errors(errors, where="body"):
    """A 422 naming each field, in Wagtail's error shape and located as django-ninja locates
    its own validation errors (``body, payload, …`` or ``query, …``). ``errors``: field →
    messages; a field is a dotted path or a tuple (``("customers", 3, "email")``)."""
    prefix = ("body", "payload") if where == "body" else (where,)
    return PydanticValidationError.from_exception_data(
        "Validation error",
        [
            {
                "type": PydanticCustomError("invalid", str(message)),
                "loc": (*prefix, *(field if isinstance(field, tuple) else field.split("."))),
                "input": None,
            }
            for field, messages in errors.items()
            for message in messages
        ],
        hide_input=True,
    )


def found(queryset, missing, **lookup):
    """The object ``lookup`` finds, or a 404 saying ``missing`` in the caller's language
    (Django's names the model, in English)."""
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404(missing)


def require(request, model, *actions):
    if not policy_registry.get_by_type(model).user_has_any_permission(request.user, actions or ANY_ACTION):
        raise PermissionDenied


def viewer_of(request, branch_slug, where="query"):
    """The token user's viewer and the branch whose values it sees.

    Branch staff act in one of their branches: the only one, or the one ``branch`` names. A
    manager sees the company; ``branch`` then shows a branch's local values. ``where`` the
    branch was given: ``query`` or ``body`` (for :func:`field_errors`).
    """
    user = request.user
    if scope.is_branch_manager(user):
        branch = Branch.objects.filter(slug=branch_slug).first() if branch_slug else None
        if branch_slug and branch is None:
            raise field_errors({"branch": [_("No such branch: %(slug)s.") % {"slug": branch_slug}]}, where)
        return scope.Viewer(user, True), branch
    own = list(scope.member_branches(user))
    if not own:
        raise PermissionDenied(_("You are not a member of any branch."))
    if branch_slug:
        chosen = next((branch for branch in own if branch.slug == branch_slug), None)
        if chosen is None:
            raise field_errors({"branch": [_("Not one of your branches.")]}, where)
    elif len(own) == 1:
        chosen = own[0]
    else:
        raise field_errors(
            {"branch": [_("You work in several branches: %(slugs)s. Choose one.") % {"slugs": ", ".join(b.slug for b in own)}]},
            where,
        )
    audit_trail.act_in(chosen)
    return scope.Viewer(user, False, (chosen,)), chosen


def audit(instance, action, user, **data):
    log(instance, f"wagtail_clientdb.{action}_via_api", user=user, data=data)


def recorded(handler):
    """A write: everything it logs names the token's user, and the branch the call acts in
    (:func:`viewer_of` sets it)."""

    @functools.wraps(handler)
    def wrapped(request, *args, **kwargs):
        with LogContext(user=request.user), audit_trail.acting_in(None):
            return handler(request, *args, **kwargs)

    return wrapped


def _refused_as_too_large(request, limit, detail):
    """A 413 in the API's error shape for a body over ``limit`` bytes (``None``: no limit), or ``None``."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if limit is not None and length > limit:
        return problem_response(status=413, detail=detail % {"limit": number_format(limit, force_grouping=True)})
    return None


def body_up_to_the_bulk_limit(run):
    """The bulk call's body is read up to ``API_BULK_MAX_BYTES`` (a larger one is refused with
    413): 10,000 records are 2–5 MB of JSON, more than Django reads for any request
    (``DATA_UPLOAD_MAX_MEMORY_SIZE``), which stays the limit of every other one. Read as
    ``HttpRequest.body`` reads it, which then gives what was read."""

    @functools.wraps(run)
    def wrapped(request, *args, **kwargs):
        detail = _("The request is larger than %(limit)s bytes; send the customers in several calls.")
        if refused := _refused_as_too_large(request, conf.get("API_BULK_MAX_BYTES"), detail):
            return refused
        if not hasattr(request, "_body"):
            request._body = request.read()
            request._stream = io.BytesIO(request._body)
        return run(request, *args, **kwargs)

    return wrapped


def body_up_to_djangos_limit(run):
    """Every other body up to ``DATA_UPLOAD_MAX_MEMORY_SIZE``, refused beyond it with a 413 in
    the API's error shape (Django's own refusal is an HTML page, or a server error in DEBUG)."""

    @functools.wraps(run)
    def wrapped(request, *args, **kwargs):
        detail = _("The request is larger than %(limit)s bytes.")
        return _refused_as_too_large(request, settings.DATA_UPLOAD_MAX_MEMORY_SIZE, detail) or run(request, *args, **kwargs)

    return wrapped


class Pagination(WagtailLimitOffsetPagination):
    """Wagtail's, with an offset the database can skip to (beyond 2⁶³ it was a server error)."""

    class Input(WagtailLimitOffsetPagination.Input):
        # Below the largest integer the databases take, with room for the limit added to it.
        offset: int = Field(default=0, ge=0, le=2**62)


class Mapped:
    """A queryset whose rows are shaped for the API only when pagination takes its page."""

    def __init__(self, queryset, shape):
        self.queryset, self.shape = queryset, shape

    def __getitem__(self, page):
        return [self.shape(row) for row in self.queryset[page]]

    def __len__(self):
        return self.queryset.count()


# --- Customers ----------------------------------------------------------------------------------------


def customers_queryset(viewer, branch):
    """The visible customers with the values ``branch`` sees, and the version of those values."""
    return with_local_version(listing.listing_queryset(viewer, branch), branch)


def with_local_version(queryset, branch):
    local_version = CustomerOverride.objects.filter(customer=OuterRef("pk"), branch=branch).values("version")[:1]
    return queryset.annotate(local_version=Subquery(local_version))


class ListedCustomers:
    """A customer listing, paged as the admin pages it (:func:`~wagtail_clientdb.listing.page_ids`):
    a page costs the index entries up to it, not a sort of every customer the token sees (5–7 s a
    page at a million customers); the count counts their keys. Each page's customers are read
    with the values ``branch`` sees and their groups, dynamic ones in ``viewer``'s scope;
    ``members_of``: groups every customer listed is in (the group filter ran their rules)."""

    def __init__(self, viewer, branch, listed, *, ordering=None, query="", unsearched=None, members_of=(), changed_since=None):
        self.viewer, self.branch, self.listed = viewer, branch, listed
        self.ordering, self.query, self.unsearched, self.members_of = ordering, query, unsearched, members_of
        #: ``(updated_since, after_id)`` of a list of changes (:mod:`wagtail_clientdb.sync`).
        self.changed_since = changed_since

    def __getitem__(self, page):
        if self.changed_since:
            ids = sync.page_of_changes(self.listed, *self.changed_since, page, branch=self.branch)
        else:
            ids = listing.page_ids(
                self.listed, self.branch, self.ordering, page.start, page.stop - page.start, query=self.query, unsearched=self.unsearched
            )
        customers = listing.in_order(customers_queryset(self.viewer, self.branch), ids)
        rows, _left = groups.attach_names(self.viewer, customers, members_of=self.members_of)
        return [customer_out(row) for row in rows]

    def __len__(self):
        if self.changed_since:
            return listing.count_exactly(sync.changed_since(self.listed, *self.changed_since, field="eff_updated_at"))
        return listing.count_exactly(self.listed)


def scope_of(customer):
    if customer.home_branch_id:
        return {"kind": "local", "branches": [customer.home_branch.slug]}
    if customer.shared_with_all_branches:
        return {"kind": "all_branches", "branches": []}
    return {"kind": "specific_branches", "branches": sorted(b.slug for b in customer.branches.all())}


def customer_out(customer):
    """A customer of :func:`customers_queryset` as the API shows it (effective values), its
    groups read by :func:`groups.attach_names`."""
    global_attributes = customer.attributes or {}
    effective_attributes = customer.eff_attributes or {}
    local = [
        name
        for name, effective in (
            ("first_name", customer.eff_first_name),
            ("last_name", customer.eff_last_name),
            ("email", customer.eff_email),
            ("phone", customer.eff_phone_raw),
            ("notes", customer.eff_notes),
            ("birthday", customer.eff_birthday),
        )
        if effective != getattr(customer, "phone_raw" if name == "phone" else name)
    ] + [f"attributes.{key}" for key, value in effective_attributes.items() if global_attributes.get(key) != value]
    return {
        "id": customer.pk,
        "first_name": customer.eff_first_name,
        "last_name": customer.eff_last_name,
        "email": customer.eff_email,
        "phone": customer.eff_phone,
        "phone_as_typed": customer.eff_phone_raw,
        "notes": customer.eff_notes,
        "birthday": customer.eff_birthday,
        "marketing_consent": customer.marketing_consent,
        "attributes": effective_attributes,
        "groups": customer.group_names,
        "tags": listing.tag_names(customer),
        "scope": scope_of(customer),
        "source": customer.source,
        "external_id": customer.external_id,
        "created_at": customer.created_at,
        "updated_at": schemas.to_the_microsecond(customer.eff_updated_at),
        "archived_at": customer.archived_at,
        "version": f"{customer.version}.{customer.local_version or 0}",
        "local_fields": local,
    }


class CustomerFilters(Schema):
    branch: schemas.Text | None = None
    q: schemas.Text | None = None
    tag: list[schemas.Text] = []
    group: list[schemas.Text] = []
    consent: bool | None = None
    attribute: list[schemas.Text] = []
    updated_since: schemas.Bound | None = None
    after_id: int | None = Field(None, description=schemas.AFTER_ID)
    archived: archive.ArchivedChoice = archive.DEFAULT_CHOICE


def _chosen_groups(filters):
    """The groups the ``group`` filter names (by name, any case) that exist."""
    return [group for name in filters.group if (group := CustomerGroup.objects.filter(name__iexact=name).select_related("segment").first())]


def _filtered(viewer, branch, queryset, filters, chosen_groups):
    """Several tags or groups find the customers in any of them, as the admin's filters do;
    several attribute conditions, those meeting every one. ``chosen_groups``: :func:`_chosen_groups`."""
    queryset = archive.in_list(queryset, filters.archived)
    if filters.tag:
        # By the tags' ids, which the planner knows how common they are: by their names, it
        # walked a million customers in name order looking for a tag nobody has.
        # In any case, as tags are named (wagtail_clientdb.tags).
        tag_ids = [tag.pk for tag in tag_names.find(filters.tag)]
        queryset = queryset.filter(pk__in=TaggedCustomer.objects.filter(tag__in=tag_ids).values("content_object"))
    if filters.group:
        queryset = queryset.filter(groups.in_any_q(viewer, chosen_groups)) if chosen_groups else queryset.none()
    if filters.consent is not None:
        queryset = queryset.filter(marketing_consent=filters.consent)
    definitions = {d.key: d for d in attributes.active_definitions(AttributeTarget.CUSTOMER)}
    for condition in filters.attribute:
        key, _sep, value = condition.partition(":")
        if key not in definitions:
            raise field_errors({"attribute": [_("No such attribute: %(key)s (use key:value).") % {"key": key}]}, "query")
        try:
            stored = attribute_types.parse_text(definitions[key], value)
        except ValidationError as error:
            raise field_errors({"attribute": error.messages}, "query")
        queryset = attributes.with_value(queryset, branch, key, [stored])
    return queryset


@router.get("/customers/", response=list[schemas.CustomerOut], url_name="clientdb_customers", openapi_extra=schemas.CHANGES, summary="List customers")
@decorate_view(page_view)  # the admin listing's page settings: no JIT compilation (0.2 s of a count)
@paginate(Pagination)
def list_customers(request: HttpRequest, response: HttpResponse, filters: CustomerFilters = Query(...)):  # noqa: B008
    """With ``updated_since``: the customers whose values, as the branch sees them (the record
    or the branch's local values), changed since, oldest change first; ``Next-Updated-Since``
    says what to ask next time."""
    require(request, Customer)
    since = changes_asked(response, filters)
    viewer, branch = viewer_of(request, filters.branch)
    queryset = customers_queryset(viewer, branch)
    if branch is not None and viewer.is_manager:
        queryset = queryset.filter(scope.visible_in_branches_q([branch]))
    chosen_groups = _chosen_groups(filters)
    filtered = _filtered(viewer, branch, queryset, filters, chosen_groups)
    query = (filters.q or "").strip()
    # One group found: every customer listed is in it (its rule need not run again for the names).
    members_of = chosen_groups if len(chosen_groups) == 1 else ()
    if since is not None:
        return ListedCustomers(viewer, branch, listing.searched(filtered, query), changed_since=(since, filters.after_id), members_of=members_of)
    return ListedCustomers(viewer, branch, listing.searched(filtered, query), query=query, unsearched=filtered, members_of=members_of)


def changes_asked(response, filters, where=None):
    """The ``updated_since`` of a list (on the clock of ``where`` when given without an offset:
    the company's by default), or ``None``; a list of changes answers what its client asks next
    time in ``Next-Updated-Since`` (see :mod:`wagtail_clientdb.sync`)."""
    if filters.updated_since is None:
        if filters.after_id is not None:
            raise field_errors({"after_id": [_("Give updated_since with after_id: the time of the change read last.")]}, "query")
        return None
    tell_next_since(response)
    return times.aware(filters.updated_since, where)


def tell_next_since(response):
    # As updated_at is given ("…Z"): sent back in a URL, it needs no %2B for a "+".
    response[schemas.NEXT_UPDATED_SINCE] = schemas.to_the_microsecond(sync.next_since())


@router.get("/customers/removed/", response=list[schemas.RemovalOut], url_name="clientdb_customers_removed", openapi_extra=schemas.CHANGES, summary="List customers removed from view")
@paginate(Pagination)
def list_removed_customers(request: HttpRequest, response: HttpResponse, since: schemas.Bound | None = None, branch: schemas.Text | None = None):
    """Customers deleted, merged into another, or no longer shared with the branch since
    ``since``, oldest first: what a sync by ``updated_since`` removes from its copy."""
    require(request, Customer)
    _viewer, branch = viewer_of(request, branch)
    tell_next_since(response)
    since = times.aware(since)  # no offset: the company's clock

    def removal_out(removal):
        return {
            "id": removal.customer_number,
            "reason": removal.reason,
            "merged_into": removal.merged_into,
            "removed_at": removal.removed_at.astimezone(datetime.UTC),
        }

    return Mapped(removals.removed_from_view(branch, since), removal_out)


def _customer(request, customer_id, branch_slug):
    require(request, Customer)
    viewer, branch = viewer_of(request, branch_slug)
    customer = found(customers_queryset(viewer, branch), _("No such customer."), pk=customer_id)
    return viewer, branch, customer


def _detail(viewer, customer, response):
    groups.attach_names(viewer, [customer])
    out = customer_out(customer)
    out["consent_history"] = [
        {"given": event.given, "channel": event.channel, "recorded_at": event.recorded_at}
        for event in customer.consent_events.all()
    ]
    response["ETag"] = f'"{out["version"]}"'
    return out


@router.get("/customers/{int:customer_id}/", response=schemas.CustomerDetailOut, url_name="clientdb_customer", summary="Read a customer")
def read_customer(request: HttpRequest, response: HttpResponse, customer_id: int, branch: schemas.Text | None = None):
    viewer, _branch, customer = _customer(request, customer_id, branch)
    return _detail(viewer, customer, response)


def possible_duplicates_out(matches):
    return [{"customer_id": match.customer.pk, "rules": match.rules} for match in matches]


@router.post("/customers/", response={201: schemas.CustomerCreatedOut}, url_name="clientdb_customers_create", summary="Create a customer")
@decorate_view(body_up_to_djangos_limit)
@recorded
def create_customer(request: HttpRequest, response: HttpResponse, payload: schemas.CustomerIn, branch: schemas.Text | None = None):
    """Created at once; the customers it may already be are named in ``possible_duplicates``
    (the admin's form asks first, a client is told)."""
    require(request, Customer, "add")
    viewer, shown_branch = viewer_of(request, branch)
    try:
        values = changes.clean_values(viewer, payload.model_dump(exclude_unset=True))
        customer = changes.create_customer(
            viewer, values, source=CustomerSource.API, channel=ConsentChannel.API, user=request.user
        )
    except changes.Refused as refused:
        raise field_errors(refused.message_dict)
    audit(customer, "create", request.user)
    out = _detail(viewer, customers_queryset(viewer, shown_branch).get(pk=customer.pk), response)
    out["possible_duplicates"] = possible_duplicates_out(matching.possible_duplicates_of(viewer, customer))
    return Status(201, out)


def expected_versions(request):
    """The versions ``If-Match`` names (RFC 9110: a list of ETags, any of which may match);
    updates without one are refused (no blind overwrites)."""
    given = request.headers.get("If-Match", "").strip()
    # "*" (any version) would be the blind overwrite the header is there to prevent.
    if not given or given == "*":
        raise HttpError(428, _("Send the version you read as If-Match (the ETag of the customer or appointment)."))
    versions = set()
    for tag in given.split(","):
        # A proxy that compresses the answer makes its ETag weak (W/"…"); the version in it is ours.
        tag = tag.strip().removeprefix("W/")
        if len(tag) > 1 and tag[0] == tag[-1] == '"' and '"' not in tag[1:-1]:
            versions.add(tag[1:-1])
        elif tag and '"' not in tag and not any(c.isspace() for c in tag) and tag != "*":
            # The body's ``version`` sent back as it is, unquoted.
            versions.add(tag)
        else:
            raise field_errors({"If-Match": [_("If-Match is not a list of ETags such as \"12.0\".")]}, where="header")
    return versions


@router.patch("/customers/{int:customer_id}/", response=schemas.CustomerDetailOut, url_name="clientdb_customer_update", openapi_extra=schemas.IF_MATCH, summary="Change a customer")
@decorate_view(body_up_to_djangos_limit)
@recorded
def update_customer(request: HttpRequest, response: HttpResponse, customer_id: int, payload: schemas.CustomerIn, branch: schemas.Text | None = None):
    require(request, Customer, "change")
    viewer, shown_branch, customer = _customer(request, customer_id, branch)
    versions = expected_versions(request)
    given = payload.model_dump(exclude_unset=True)
    try:
        values = changes.clean_values(viewer, given)
        changes.update_customer(
            viewer, customer, values, expected_versions=versions, shown_branch=shown_branch, channel=ConsentChannel.API,
            user=request.user, back_to_company=changes.given_as_null(given),
        )
    except changes.StaleVersion:
        raise HttpError(412, _("The customer changed since you read it. Read it again and repeat your change."))
    except changes.Refused as refused:
        raise field_errors(refused.message_dict)
    return _detail(viewer, customers_queryset(viewer, shown_branch).get(pk=customer.pk), response)


@router.delete("/customers/{int:customer_id}/", response={202: schemas.DeletionOut}, url_name="clientdb_customer_delete", summary="Delete a customer")
@recorded
def delete_customer(request: HttpRequest, customer_id: int, branch: schemas.Text | None = None):
    """Through the "Customers to delete" queue: the answer is the request's state (deleted at
    once, or blocked by upcoming appointments until they are over)."""
    require(request, Customer, "delete")
    viewer, _branch, customer = _customer(request, customer_id, branch)
    queued = deletion.request_deletion(viewer, customer, log_action="wagtail_clientdb.delete_via_api")
    # The customer asked about, also when deleted at once (the request no longer points to it).
    return Status(202, {"status": queued.status, "customer_id": customer.pk, "errors": [deletion.describe_blocking(e) for e in queued.errors]})


# --- Segments (saved filters) -------------------------------------------------------------------------------


def segment_out(segment):
    return {
        "id": segment.pk,
        "name": segment.name,
        "visibility": segment.visibility,
        "branch": segment.branch.slug if segment.branch else None,
        "query": segment.query,
        "created_at": segment.created_at,
        "updated_at": segment.updated_at,
    }


@router.get("/segments/", response=list[schemas.SegmentOut], url_name="clientdb_segments", summary="List segments")
@paginate(Pagination)
def list_segments(request: HttpRequest, branch: schemas.Text | None = None):
    """The token user's own segments, those shared with the branch it acts in (every branch's for
    the head office) and the company's."""
    require(request, Segment)
    viewer, _branch = viewer_of(request, branch)
    return Mapped(segments.visible_segments(viewer).select_related("branch").order_by("name", "pk"), segment_out)


@router.get(
    "/segments/{int:segment_id}/customers/",
    response=list[schemas.CustomerOut],
    url_name="clientdb_segment_customers",
    summary="List a segment's customers",
)
@decorate_view(page_view)
@paginate(Pagination)
def segment_customers(request: HttpRequest, segment_id: int, branch: schemas.Text | None = None):
    """The segment's customers as the token's user sees them (its scope, its branch's values), in
    the segment's order. A head-office token with ``branch`` sees them as that branch does."""
    require(request, Customer)
    require(request, Segment)
    viewer, shown_branch = viewer_of(request, branch)
    segment = found(segments.visible_segments(viewer), _("No such segment."), pk=segment_id)
    location = shown_branch if viewer.is_manager else None
    queryset, values_of = segments.listed(viewer, segment, location=location)
    params = segment.params
    return ListedCustomers(viewer, values_of, queryset, ordering=params.get("ordering"), query=params.get("q", "").strip())


# --- Bulk import of global shared customers ----------------------------------------------------------------


def once_per_key(request, work):
    """``work()``'s answer; with an ``Idempotency-Key`` header, a retry of the call (the same
    user, key, method, address and body, within a day) gets the first call's answer without the
    work being done again. A call that failed leaves the key free for its retry."""
    replay, record = _replayed(request)
    if replay is not None:
        return replay
    try:
        answer = work()
    except BaseException:
        if record is not None:
            record.delete()
        raise
    if record is not None:
        if isinstance(answer, Status):
            record.status, record.response = answer.status_code, json.loads(json.dumps(answer.value, cls=DjangoJSONEncoder))
        else:
            record.status, record.response = answer.status_code, json.loads(answer.content)
        record.save(update_fields=["status", "response"])
    return answer


def _replayed(request):
    """The stored answer of an earlier call with this ``Idempotency-Key``, or the record to fill."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None, None
    longest = ApiIdempotencyKey._meta.get_field("key").max_length
    if len(key) > longest:
        # Cut to fit, two keys that differ after the cut would be one: a new call answered as another.
        raise HttpError(422, _("An Idempotency-Key has at most %(count)s characters.") % {"count": longest})
    call = hashlib.sha256(f"{request.method} {request.get_full_path()} ".encode())
    call.update(request.body)
    digest = call.hexdigest()
    ApiIdempotencyKey.objects.filter(created_at__lt=timezone.now() - datetime.timedelta(days=1)).delete()
    try:
        with transaction.atomic():
            return None, ApiIdempotencyKey.objects.create(user=request.user, key=key, request_hash=digest)
    except IntegrityError:
        earlier = ApiIdempotencyKey.objects.get(user=request.user, key=key)
    if earlier.request_hash != digest:
        raise HttpError(422, _("This Idempotency-Key was used for another request."))
    if earlier.status is None:
        raise HttpError(409, _("A request with this Idempotency-Key is still running."))
    return Status(earlier.status, earlier.response), None


def collection_deferred(run):
    """The whole call, its body's validation and its answer included, runs as an import does
    (:func:`~wagtail_clientdb.imports.runner.gc_frozen`): the objects of 10,000 records and their
    results otherwise set off full garbage collections, each walking every object of Django and
    Wagtail (about 0.15 s each, one or two per call)."""

    @functools.wraps(run)
    def wrapped(request, *args, **kwargs):
        with gc_frozen():
            return run(request, *args, **kwargs)

    return wrapped


@router.post("/customers/bulk/", response={200: schemas.BulkOut, 422: schemas.BulkOut}, url_name="clientdb_customers_bulk", openapi_extra=schemas.IDEMPOTENCY_KEY, summary="Import customers in bulk")
@decorate_view(collection_deferred, body_up_to_the_bulk_limit)
@recorded
def bulk_import(request: HttpRequest, payload: schemas.BulkIn, branch: schemas.Text | None = None):
    """Up to 10,000 customers, matched by external ID, then email, then phone among the
    customers the token's user may see: the same payload twice changes nothing the second
    time. The head office's new customers are shared with all branches (or the branches a
    record names); a branch token's are local to its branch, as in its file import. All or
    none by default; ``partial`` saves the valid ones."""
    require(request, Customer, "add")
    require(request, Customer, "change")
    viewer, _shown = viewer_of(request, branch)
    refused = {}
    if not viewer.is_manager:
        refused = {
            ("customers", index, name): [_("Only the head office can set this.")]
            for index, record in enumerate(payload.customers)
            for name in changes.MANAGER_ONLY
            if record.get(name) is not None
        }
    # An attribute nobody defined is a mistake of the caller, as when creating one customer:
    # an import of a file would only leave its column out, and lose what the caller sent.
    given = {key for record in payload.customers for key in (record.get("attributes") or ())}
    if undefined := attributes.undefined(AttributeTarget.CUSTOMER, given):
        for index, record in enumerate(payload.customers):
            for key in undefined.intersection(record.get("attributes") or ()):
                refused[("customers", index, "attributes", key)] = [str(attributes.UNDEFINED)]
    if refused:
        raise field_errors(refused)
    return once_per_key(request, lambda: _bulk_answer(*import_records(viewer, payload.customers, partial=payload.partial)))


def _bulk_answer(saved, results, batch):
    # Refused all or nothing, the valid records were not saved either: "created" would read as done.
    result_of = (lambda r: r.result) if saved else (lambda r: r.result if r.result == "error" else "not_saved")
    counts = Counter(r.result for r in results) if saved else Counter()
    answer = schemas.BulkOut.model_construct(
        saved=saved,
        **{kind: counts[kind] for kind in ("created", "updated", "unchanged")},
        errors=sum(r.result == "error" for r in results),
        batch=batch.pk if batch is not None else None,
        records=[
            {
                "index": r.index - 1,
                "result": result_of(r),
                "id": r.id,
                "errors": r.errors or {},
                "possible_duplicates": possible_duplicates_out(r.possible_duplicates),
            }
            for r in results
        ],
    )
    # Built here from values of known types and written by pydantic in one go: validating
    # 10,000 results again and encoding them with the json module took 0.06–0.08 s of a call.
    return HttpResponse(answer.model_dump_json(), status=200 if saved else 422, content_type="application/json; charset=utf-8")


# --- Rolling back an import batch -------------------------------------------------------------------------


def _batch(request, batch_id, branch_slug):
    """A batch the token's user may roll back: any for the head office, a branch user's own
    of the branch it acts in; 404 otherwise."""
    require(request, Customer, "add")
    viewer, _shown = viewer_of(request, branch_slug)
    return viewer, found(import_rollback.visible_batches(viewer), _("No such import batch."), pk=batch_id)


def batch_out(batch, viewer, user):
    refusal = import_rollback.refusal(batch, viewer)
    report = None
    if batch.rolled_back_at:
        report = batch.rollback_report
    elif not refusal:
        report = import_rollback.preview(batch, user)
    rollback = None
    if report is not None:
        shown = import_rollback.describe(report, viewer)
        rollback = {
            "done": bool(batch.rolled_back_at),
            "deleted": shown["deleted"],
            "restored": shown["restored"],
            "gone": shown["gone"],
            "blocked": [{"customer_id": e["customer"], "errors": e["errors"]} for e in shown["blocked"]],
            "kept": [{"customer_id": e["customer"], "reason": e["reason"], "message": e["message"]} for e in shown["kept"]],
            "partly": [{"customer_id": e["customer"], "notes": e["notes"]} for e in shown["partly"]],
            "not_restored": [
                {"customer_id": e["customer"], "reason": e["reason"], "fields": e["fields"], "message": e["message"]}
                for e in shown["not_restored"]
            ],
        }
    return {
        "id": batch.pk,
        "source": batch.source,
        "created_at": batch.created_at,
        "created": batch.created,
        "updated": batch.updated,
        "rolled_back_at": batch.rolled_back_at,
        "rolling_back": bool(batch.rollback_queued_at and not batch.rolled_back_at),
        "refusal": None if batch.rolled_back_at else refusal,
        "rollback": rollback,
    }


@router.get("/customers/bulk/{int:batch_id}/", response=schemas.ImportBatchOut, url_name="clientdb_import_batch", summary="Read an import batch")
def read_batch(request: HttpRequest, batch_id: int, branch: schemas.Text | None = None):
    """A bulk call (or file import) as a batch: what it created and changed, and what rolling it
    back would do now — or, once rolled back, what the rollback did."""
    viewer, batch = _batch(request, batch_id, branch)
    return batch_out(batch, viewer, request.user)


@router.post(
    "/customers/bulk/{int:batch_id}/rollback/",
    response={200: schemas.ImportBatchOut, 202: schemas.ImportBatchOut},
    url_name="clientdb_import_batch_rollback",
    summary="Roll back an import batch",
)
@recorded
def roll_back_batch(request: HttpRequest, batch_id: int, branch: schemas.Text | None = None):
    """Delete the customers the batch created (through the deletion queue: upcoming appointments
    keep a customer there) and restore the values it changed, unless changed since; once. A
    large batch is rolled back in the background: 202, then read the batch until it is done."""
    viewer, batch = _batch(request, batch_id, branch)
    try:
        if import_rollback.runs_in_background(batch):
            batch = import_rollback.queue_roll_back(batch, request.user, channel=ConsentChannel.API)
            batch.refresh_from_db()  # done already where tasks run at once
            return Status(200 if batch.rolled_back_at else 202, batch_out(batch, viewer, request.user))
        batch = import_rollback.roll_back(batch, request.user, channel=ConsentChannel.API)
    except import_rollback.RollbackRefused as refused:
        raise HttpError(409, str(refused))
    return batch_out(batch, viewer, request.user)


# --- Appointments --------------------------------------------------------------------------------------


def appointment_version(appointment):
    return str(int(appointment.updated_at.timestamp() * 1_000_000))


def appointment_out(appointment, response=None):
    out = {
        "id": appointment.pk,
        "customer_id": appointment.customer_id,
        "branch": appointment.branch.slug,
        "service": appointment.service.name,
        # In UTC, as read back later (a new one's start is on the clock it was given on).
        "start": appointment.start.astimezone(datetime.UTC),
        "end": appointment.end.astimezone(datetime.UTC),
        "status": appointment.status,
        "source": appointment.source,
        "staff_id": appointment.staff_id,
        "notes": appointment.notes,
        "attributes": appointment.attributes or {},
        "updated_at": schemas.to_the_microsecond(appointment.updated_at),
        "version": appointment_version(appointment),
    }
    if response is not None:
        response["ETag"] = f'"{out["version"]}"'
    return out


def appointments_of(viewer):
    return scope.visible_appointments(viewer).select_related("branch", "service").order_by("start", "pk")


class AppointmentFilters(Schema):
    branch: schemas.Text | None = None
    start_after: schemas.Bound | None = None
    start_before: schemas.Bound | None = None
    status: AppointmentStatus | None = None
    updated_since: schemas.Bound | None = None
    after_id: int | None = Field(None, description=schemas.AFTER_ID)


@router.get("/services/", response=list[schemas.ServiceOut], url_name="clientdb_services", summary="List services")
@paginate(Pagination)
def list_services(request: HttpRequest, branch: schemas.Text | None = None):
    """The services that can be booked (active), with the branches of the token's user that
    offer them (``branch``: one branch's): a booking names its service."""
    require(request, Service)
    viewer, chosen = viewer_of(request, branch)
    branches = [chosen] if chosen is not None else list(scope.visible_branches(viewer))
    offered = Service.objects.active().filter(branches__in=branches).distinct().order_by("name").prefetch_related("branches")
    slugs = {branch.pk: branch.slug for branch in branches}

    def service_out(service):
        return {
            "name": service.name,
            "duration": service.duration,
            "branches": sorted(slugs[b.pk] for b in service.branches.all() if b.pk in slugs),
        }

    return Mapped(offered, service_out)


@router.get("/appointments/", response=list[schemas.AppointmentOut], url_name="clientdb_appointments", openapi_extra=schemas.CHANGES, summary="List appointments")
@decorate_view(page_view)
@paginate(Pagination)
def list_appointments(request: HttpRequest, response: HttpResponse, filters: AppointmentFilters = Query(...)):  # noqa: B008
    require(request, Appointment)
    viewer, branch = viewer_of(request, filters.branch)
    queryset = appointments_of(viewer)
    if branch is not None:
        queryset = queryset.filter(branch=branch)
    # Times without an offset are read on the branch's clock (the company's without a branch).
    if filters.start_after:
        queryset = queryset.filter(start__gte=times.aware(filters.start_after, branch))
    if filters.start_before:
        queryset = queryset.filter(start__lt=times.aware(filters.start_before, branch))
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    # On the branch's clock when given without an offset, as the other times of the list.
    if (since := changes_asked(response, filters, branch)) is not None:
        queryset = sync.changed_since(queryset, since, filters.after_id)
    return Mapped(queryset, appointment_out)


@router.get("/appointments/removed/", response=list[schemas.AppointmentRemovalOut], url_name="clientdb_appointments_removed", openapi_extra=schemas.CHANGES, summary="List appointments removed from view")
@paginate(Pagination)
def list_removed_appointments(request: HttpRequest, response: HttpResponse, since: schemas.Bound | None = None, branch: schemas.Text | None = None):
    """Appointments deleted, or moved to another branch, since ``since``, oldest first: what a
    sync of a branch's appointments by ``updated_since`` removes from its copy."""
    require(request, Appointment)
    _viewer, branch = viewer_of(request, branch)
    tell_next_since(response)

    def removal_out(removal):
        return {"id": removal.appointment_number, "reason": removal.reason, "removed_at": removal.removed_at.astimezone(datetime.UTC)}

    return Mapped(removals.appointments_removed_from_view(branch, times.aware(since)), removal_out)


@router.get("/appointments/{int:appointment_id}/", response=schemas.AppointmentOut, url_name="clientdb_appointment", summary="Read an appointment")
def read_appointment(request: HttpRequest, response: HttpResponse, appointment_id: int, branch: schemas.Text | None = None):
    require(request, Appointment)
    viewer, _branch = viewer_of(request, branch)
    return appointment_out(found(appointments_of(viewer), _("No such appointment."), pk=appointment_id), response)


@router.post("/appointments/", response={201: schemas.AppointmentCreatedOut}, url_name="clientdb_appointments_create", openapi_extra=schemas.IDEMPOTENCY_KEY, summary="Book an appointment")
@decorate_view(body_up_to_djangos_limit)
@recorded
def create_appointment(request: HttpRequest, response: HttpResponse, payload: schemas.AppointmentIn):
    """For an existing customer (``customer_id``) or a person (``customer``), found by the
    identity rule among the branch's customers or created, as the booking page does; a created
    customer's possible duplicates are named, as when creating a customer."""
    require(request, Appointment, "add")
    # The branch is required: viewer_of returns it, or refuses one that is not the user's.
    viewer, branch = viewer_of(request, payload.branch, "body")
    if branch is None:
        raise field_errors({"branch": [_("Name the branch to book in.")]})
    service = Service.objects.offered_by(branch).filter(name=payload.service).first()
    errors = {}
    if service is None:
        errors["service"] = [_("%(branch)s does not offer “%(service)s”.") % {"branch": branch, "service": payload.service}]
    if (payload.customer_id is None) == (payload.customer is None):
        errors["customer"] = [_("Give customer_id or customer, one of them.")]
    booking_attributes, attribute_errors = _booking_attributes(payload.attributes)
    errors.update(attribute_errors)
    start = None
    try:
        start = times.one_moment(payload.start, branch)  # without an offset: the branch's local time
    except ValidationError as error:
        errors["start"] = error.messages
    if errors:
        raise field_errors(errors)
    return once_per_key(request, lambda: _book(request, response, viewer, branch, service, payload, start, booking_attributes))


def _book(request, response, viewer, branch, service, payload, start, booking_attributes):
    created = False
    with transaction.atomic():
        if payload.customer_id is not None:
            customer = scope.visible_customers(viewer).filter(pk=payload.customer_id).first()
            if customer is None:
                raise field_errors({"customer_id": [_("No such customer.")]})
        else:
            try:
                changes.check_new_person(viewer, payload.customer.model_dump(include={"first_name", "last_name", "email", "phone"}))
            except changes.Refused as refused:
                raise field_errors({f"customer.{key}": messages for key, messages in refused.message_dict.items()})
            details = registration.ContactDetails(
                first_name=payload.customer.first_name,
                last_name=payload.customer.last_name,
                email=payload.customer.email,
                phone=payload.customer.phone,
                consent=payload.customer.marketing_consent or None,
            )
            try:
                registered = registration.register(
                    viewer,
                    details,
                    source=CustomerSource.API,
                    channel=ConsentChannel.API,
                    user=request.user,
                    share_with=branch,
                )
                customer, created = registered.customer, not registered.matched_by
            except matching.NoSafeMatch as problem:
                raise field_errors({f"customer.{key}": messages for key, messages in problem.message_dict.items()})
        appointment = Appointment(
            customer=customer,
            branch=branch,
            service=service,
            start=start,
            end=service.end_for(start),
            source=AppointmentSource.API,
            notes=payload.notes,
            attributes=booking_attributes,
        )
        try:
            booking.save_appointment(appointment)
        except deletion.BookingRefused as refusal:
            raise field_errors({"customer": refusal.messages})
    audit(appointment, "create", request.user)
    out = appointment_out(appointment, response)
    out["possible_duplicates"] = possible_duplicates_out(matching.possible_duplicates_of(viewer, customer) if created else [])
    return Status(201, out)


def _booking_attributes(given):
    values, errors = attributes.parse_given(AttributeTarget.BOOKING, given)
    return {key: value for key, value in values.items() if value is not None}, errors


@router.patch("/appointments/{int:appointment_id}/", response=schemas.AppointmentOut, url_name="clientdb_appointment_update", openapi_extra=schemas.IF_MATCH, summary="Change an appointment's status")
@decorate_view(body_up_to_djangos_limit)
@recorded
def update_appointment(request: HttpRequest, response: HttpResponse, appointment_id: int, payload: schemas.AppointmentStatusIn, branch: schemas.Text | None = None):
    require(request, Appointment, "change")
    viewer, _branch = viewer_of(request, branch)
    versions = expected_versions(request)
    with transaction.atomic():
        appointment = found(appointments_of(viewer).select_for_update(of=("self",)), _("No such appointment."), pk=appointment_id)
        if appointment_version(appointment) not in versions:
            raise HttpError(412, _("The appointment changed since you read it. Read it again and repeat your change."))
        try:
            if payload.status == AppointmentStatus.BOOKED:
                appointment.status = payload.status
                booking.save_appointment(appointment)
            else:
                booking.set_status(appointment, payload.status, record=False)
        except ValidationError as refusal:
            raise field_errors({"status": refusal.messages})
    audit(appointment, "edit", request.user, status=payload.status)
    return appointment_out(appointment, response)


def _declare_common_problems():
    """Every operation's schema names the errors any of them can answer (the route's own,
    such as 412, are declared on it)."""
    for path_view in router.path_operations.values():
        for operation in path_view.operations:
            extra = operation.openapi_extra or {}
            operation.openapi_extra = {**extra, "responses": {**schemas.COMMON_PROBLEMS["responses"], **extra.get("responses", {})}}


_declare_common_problems()


# Last: any other path under the router (``customers/abc/``) is a 404 in the API's error shape,
# not Django's HTML page.
@router.api_operation(["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", include_in_schema=False)
def no_such_endpoint(request: HttpRequest, rest: str):
    raise Http404(_("No such endpoint: %(path)s") % {"path": request.path})
