from .api import ApiIdempotencyKey
from .appointment import Appointment, AppointmentQuerySet, AppointmentSource, AppointmentStatus
from .attribute import AttributeDefinition, AttributeTarget, AttributeType
from .booking_block import OnlineBookingBlock
from .booking_page import BookingPage
from .branch import Branch, BranchMembership, ClosedDay, OpeningHours, Weekday
from .customer import (
    BranchBookings,
    ConsentChannel,
    ConsentEvent,
    Customer,
    CustomerOverride,
    CustomerSource,
    CustomerTag,
    TaggedCustomer,
    VisitCounting,
)
from .deletion import DeletionReason, DeletionRequest, DeletionStatus
from .duplicates import DuplicatePair, DuplicateReason, DuplicateRule
from .group import CustomerGroup
from .jobs import BulkActionJob, BulkActionStatus, ExportJob, ImportBatch, ImportBatchPart, ImportJob, JobStatus, SavedImportMapping
from .log_entry import ClientDBLogEntry
from .merge import CustomerMerge
from .removal import AppointmentRemoval, AppointmentRemovalReason, CustomerRemoval, RemovalReason
from .segment import Segment, SegmentVisibility
from .service import Service
from .settings import ClientDBSettings

__all__ = [
    "ApiIdempotencyKey",
    "Appointment",
    "AppointmentQuerySet",
    "AppointmentSource",
    "AppointmentStatus",
    "AttributeDefinition",
    "AttributeTarget",
    "AttributeType",
    "BookingPage",
    "Branch",
    "BranchMembership",
    "BulkActionJob",
    "BulkActionStatus",
    "ClientDBLogEntry",
    "ClientDBSettings",
    "ClosedDay",
    "OnlineBookingBlock",
    "BranchBookings",
    "ConsentChannel",
    "ConsentEvent",
    "Customer",
    "CustomerGroup",
    "CustomerMerge",
    "CustomerOverride",
    "CustomerRemoval",
    "AppointmentRemoval",
    "AppointmentRemovalReason",
    "CustomerSource",
    "CustomerTag",
    "DeletionReason",
    "DeletionRequest",
    "DeletionStatus",
    "DuplicatePair",
    "DuplicateReason",
    "DuplicateRule",
    "ExportJob",
    "ImportBatch",
    "ImportBatchPart",
    "ImportJob",
    "JobStatus",
    "OpeningHours",
    "SavedImportMapping",
    "RemovalReason",
    "Segment",
    "SegmentVisibility",
    "Service",
    "TaggedCustomer",
    "VisitCounting",
    "Weekday",
]
