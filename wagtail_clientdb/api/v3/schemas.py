"""The shapes of the API's requests and responses (pydantic, through django-ninja).

Inputs are plain pydantic models, and the bulk import's records and results typed dicts:
ninja's ``Schema`` wraps every object in a getter for Django models (and validates twice when
extra fields are forbidden), which cost seconds on 10,000 bulk records, and making and
dumping 10,000 model objects cost more than validating them. The other answers are ninja
schemas.
"""

import datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal

from django.core.validators import ProhibitNullCharactersValidator
from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict
from wagtail.api.v3.errors import ProblemDetail

from ... import contact, times


def _without_null_characters(value):
    """Text with a NUL character is refused as the admin's forms refuse it, and half of a
    character as well (no database stores either)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise PydanticCustomError("null_characters", str(ProhibitNullCharactersValidator.message))
        if contact.has_half_a_character(value):
            raise PydanticCustomError("half_a_character", str(contact.HALF_A_CHARACTER_MESSAGE))
    return value


def _values_without_null_characters(values):
    for value in values.values():
        _without_null_characters(value)
    return values


def _in_utc(value):
    """A time with an offset as the same moment in UTC: ISO 8601 allows offsets up to ±23:59,
    PostgreSQL stores none beyond ±15:59. One without an offset stays on the clock it is read on."""
    return value if value.tzinfo is None else value.astimezone(datetime.UTC)


def _within_the_years(value):
    # As given (9999-12-31 has no moment in UTC west of Greenwich), then as the moment stored.
    if message := times.outside_the_years(value) or times.outside_the_years(moment := _in_utc(value)):
        raise PydanticCustomError("out_of_range", message)
    return moment


#: A time a client sets (an appointment's start).
Moment = Annotated[datetime.datetime, AfterValidator(_within_the_years)]
#: A time a list is filtered from or to (``updated_since``, ``start_after``).
Bound = Annotated[datetime.datetime, AfterValidator(times.moved_into_the_years), AfterValidator(_in_utc)]

def to_the_microsecond(value):
    """When a record changed, in UTC to the microsecond as stored: a client pages on after it
    (``updated_since`` with ``after_id``), which the JSON encoder's milliseconds would not
    match. Given so by the shaping functions too, so that a replayed answer (``Idempotency-Key``)
    is the answer given."""
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


ChangedAt = Annotated[datetime.datetime, PlainSerializer(to_the_microsecond, return_type=str)]

#: Text as a client sends it, in a body or a query.
Text = Annotated[str, AfterValidator(_without_null_characters)]
#: Attribute key → value; values are checked by the attribute registry, text ones here first.
AttributeValues = Annotated[dict[Text, Any], AfterValidator(_values_without_null_characters)]


class Strict(BaseModel):
    """Input: a field nobody may set is a field error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ScopeOut(Schema):
    kind: Literal["all_branches", "specific_branches", "local"]
    branches: list[str] = Field(description="Slugs of the branches it is shared with (specific) or local to.")


class ConsentEventOut(Schema):
    given: bool
    channel: str
    recorded_at: datetime.datetime


class CustomerOut(Schema):
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str = Field(description="E.164; empty when the number as typed could not be read.")
    phone_as_typed: str
    notes: str
    birthday: datetime.date | None
    marketing_consent: bool
    attributes: dict[str, Any]
    groups: list[str]
    tags: list[str]
    scope: ScopeOut
    source: str
    external_id: str
    created_at: datetime.datetime
    updated_at: ChangedAt
    archived_at: datetime.datetime | None = Field(
        description="When the customer was archived; empty for customers in the lists."
    )
    version: str = Field(description="Send it back as If-Match to change the customer.")
    local_fields: list[str] = Field(description="Fields whose values are the branch's own (local values).")


class CustomerDetailOut(CustomerOut):
    consent_history: list[ConsentEventOut]


#: The duplicate rules (:class:`~wagtail_clientdb.models.DuplicateRule`), most telling first.
DuplicateRuleName = Literal["email", "phone", "name_birthday", "name_phone"]
POSSIBLE_DUPLICATES = (
    "Customers this token may see whom {who} may be, by the duplicate rules, best first. It is created all the "
    "same; the duplicate scan lists such pairs under Possible duplicates."
)


class PossibleDuplicateOut(Schema):
    customer_id: int
    rules: list[DuplicateRuleName]


class CustomerCreatedOut(CustomerDetailOut):
    possible_duplicates: list[PossibleDuplicateOut] = Field(
        description=POSSIBLE_DUPLICATES.format(who="the new customer")
    )


class SegmentOut(Schema):
    id: int
    name: str
    visibility: Literal["private", "branch", "company"]
    branch: str | None = Field(description="Slug of the branch it is shared with (visibility branch).")
    query: str = Field(description="The admin listing's filters, search and order, as a query string.")
    created_at: datetime.datetime
    updated_at: datetime.datetime


class CustomerIn(Strict):
    first_name: Text | None = None
    last_name: Text | None = None
    email: Text | None = None
    phone: Text | None = Field(None, description="Any common format; stored in E.164.")
    notes: Text | None = None
    birthday: datetime.date | None = None
    marketing_consent: bool | None = Field(None, description="true gives, false withdraws; absent changes nothing.")
    attributes: AttributeValues | None = Field(None, description="Attribute key → value; null removes a value.")
    groups: list[Text] | None = Field(None, description="Group names; replaces the customer's groups.")
    tags: list[Text] | None = Field(None, description="Tag names; replaces the customer's tags.")
    external_id: Text | None = Field(None, description="Head office only.")
    shared_with_all_branches: bool | None = Field(None, description="Head office only; final once true.")
    branches: list[Text] | None = Field(None, description="Head office only: slugs of the branches to share with.")


class DeletionOut(Schema):
    status: Literal["pending", "blocked", "done", "cancelled"]
    customer_id: int | None
    errors: list[str] = Field(description="Per branch, the upcoming appointment that blocks the deletion.")


@with_config(ConfigDict(extra="forbid"))
class BulkRecordIn(TypedDict, total=False):
    """A record as a plain dict of the fields it carries: 10,000 model objects and their
    ``model_dump`` took longer than validating them. Text is checked by the import's row
    checks (NUL characters included), as the cells of a file are."""

    external_id: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    notes: str | None
    birthday: datetime.date | None
    marketing_consent: bool | None
    groups: list[str] | None
    tags: list[str] | None
    branches: Annotated[
        list[str] | None,
        Field(
            description="Head office only: slugs of the branches a new customer is shared with (absent: all branches). "
            "An existing customer keeps its sharing unless this is given."
        ),
    ]
    attributes: dict[str, Any] | None


class BulkIn(Strict):
    customers: list[BulkRecordIn] = Field(max_length=10_000)
    partial: bool = Field(False, description="Save the valid records and report the rest (default: all or none).")


class BulkPossibleDuplicate(TypedDict):
    customer_id: int
    rules: list[DuplicateRuleName]


class BulkRecordResult(TypedDict):
    index: int
    result: Annotated[
        Literal["created", "updated", "unchanged", "error", "not_saved"],
        Field(description='not_saved: a valid record of a call refused all or none ("saved": false), written no more than the others.'),
    ]
    id: int | None
    errors: dict[str, list[str]]
    possible_duplicates: Annotated[
        list[BulkPossibleDuplicate],
        Field(description=POSSIBLE_DUPLICATES.format(who="a created customer") + " At most 3."),
    ]


class BulkOut(BaseModel):
    saved: bool = Field(description="false: nothing was saved (all or none, and some records were refused).")
    created: int = Field(description="Customers created by the call (0 when nothing was saved); so too updated and unchanged.")
    updated: int
    unchanged: int
    errors: int
    batch: int | None = Field(
        description="The import batch of this call, which can be rolled back (customers/bulk/{batch_id}/rollback/); "
        "null when nothing was saved."
    )
    records: list[BulkRecordResult]


class RollbackBlockedOut(Schema):
    customer_id: int
    errors: list[str] = Field(description="The upcoming appointments that keep the customer in the deletion queue.")


class RollbackKeptOut(Schema):
    customer_id: int
    reason: Literal["changed_since", "not_allowed"]
    message: str


class RollbackPartlyOut(Schema):
    customer_id: int
    notes: list[str]


class RollbackNotRestoredOut(Schema):
    customer_id: int
    reason: Literal["changed_since", "not_allowed", "gone"]
    fields: list[str] = Field(description="With changed_since: the fields changed since the import.")
    message: str


class RollbackOut(Schema):
    done: bool = Field(description="true: what the rollback did; false: what rolling back would do now.")
    deleted: int = Field(description="Customers the import created that are (or would be) deleted.")
    blocked: list[RollbackBlockedOut] = Field(description="Created customers not deleted: upcoming appointments.")
    kept: list[RollbackKeptOut] = Field(description="Created customers kept: changed since the import, or not yours to delete.")
    restored: int = Field(description="Customers the import changed whose values from before are (or would be) restored.")
    partly: list[RollbackPartlyOut] = Field(description="Restored customers of which something could not be restored.")
    not_restored: list[RollbackNotRestoredOut]
    gone: int = Field(description="Created customers deleted since the import.")


class ImportBatchOut(Schema):
    id: int
    source: Literal["import", "api"] = Field(description="A file import (import) or a bulk call (api).")
    created_at: datetime.datetime
    created: int
    updated: int
    rolled_back_at: datetime.datetime | None
    rolling_back: bool = Field(description="A large rollback runs in the background: true until it is done.")
    refusal: str | None = Field(description="Why the batch cannot be rolled back (any more); null when it can.")
    rollback: RollbackOut | None


class RemovalOut(Schema):
    id: int = Field(description="The number the customer had (or has, when no longer shared with the branch).")
    reason: Literal["deleted", "merged", "unshared", "deletion_queued"]
    merged_into: int | None = Field(description="Merged: the customer it lives on as.")
    removed_at: datetime.datetime


class AppointmentRemovalOut(Schema):
    id: int = Field(description="The number the appointment had (or has, when moved to another branch).")
    reason: Literal["deleted", "moved"]
    removed_at: datetime.datetime


class ServiceOut(Schema):
    name: str = Field(description="What a booking names as its service.")
    duration: int = Field(description="Minutes: a booking's end is its start plus these.")
    branches: list[str] = Field(description="Slugs of the token user's branches that offer it.")


class AppointmentOut(Schema):
    id: int
    customer_id: int | None
    branch: str
    service: str
    start: datetime.datetime
    end: datetime.datetime
    status: str
    source: str
    staff_id: int | None
    notes: str
    attributes: dict[str, Any]
    updated_at: ChangedAt
    version: str


class AppointmentCreatedOut(AppointmentOut):
    possible_duplicates: list[PossibleDuplicateOut] = Field(
        description=POSSIBLE_DUPLICATES.format(who="the customer this booking created")
        + " Empty when an existing customer was booked."
    )


class NewCustomerIn(Strict):
    first_name: Text = ""
    last_name: Text = ""
    email: Text = ""
    phone: Text = ""
    marketing_consent: bool = False


class AppointmentIn(Strict):
    branch: Text = Field(description="Slug of the branch.")
    service: Text = Field(description="Name of the service.")
    start: Moment = Field(description="ISO 8601; a time without an offset is the branch's local time.")
    customer_id: int | None = Field(None, description="An existing customer …")
    customer: NewCustomerIn | None = Field(None, description="… or a person, found by the identity rule or created.")
    notes: Text = ""
    attributes: AttributeValues = {}


class AppointmentStatusIn(Strict):
    status: Literal["booked", "completed", "no_show", "cancelled"]


# --- What the schema says beyond the bodies: headers and error answers --------------------------------------


def _header(name, description, *, required):
    return {"in": "header", "name": name, "required": required, "schema": {"type": "string"}, "description": description}


def problem_answers(*statuses):
    """OpenAPI ``responses`` for errors in Wagtail's ``application/problem+json`` shape."""
    content = {"application/problem+json": {"schema": ProblemDetail.model_json_schema()}}
    # Keyed by number, as django-ninja keys the responses it merges these into.
    return {status: {"description": HTTPStatus(status).phrase, "content": content} for status in statuses}


#: Every operation's possible errors (a missing or unknown token, no permission, not in scope,
#: a field error, too many requests).
COMMON_PROBLEMS = {"responses": problem_answers(401, 403, 404, 422, 429)}

IF_MATCH = {
    "parameters": [_header("If-Match", "The ETag of the record as read; a record changed since is not changed (412).", required=True)],
    "responses": problem_answers(412, 428),
}

IDEMPOTENCY_KEY = {
    "parameters": [
        _header(
            "Idempotency-Key",
            "Any text of the client's: a retry of the same call (method, address, body) within a day gets the first answer "
            "without the work being done again.",
            required=False,
        )
    ],
    "responses": problem_answers(409),
}


#: The header of a list of changes that says what its client asks next time (:mod:`wagtail_clientdb.sync`).
NEXT_UPDATED_SINCE = "Next-Updated-Since"

AFTER_ID = (
    "With `updated_since`: the id of the change read last, whose `updated_at` is `updated_since`: the list goes on "
    "after it (the changes at that moment with a greater id, then the later ones)."
)

#: A list of changes: oldest first, and what to ask next time.
CHANGES = {
    "responses": {
        200: {
            "headers": {
                NEXT_UPDATED_SINCE: {
                    "description": "The `updated_since` (and the removals' `since`) of the client's next sync, taken when "
                    "this answer was asked for: no change committed later is dated earlier.",
                    "schema": {"type": "string", "format": "date-time"},
                }
            }
        }
    }
}
