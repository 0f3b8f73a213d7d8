from .appointment import Appointment, AppointmentQuerySet, AppointmentSource, AppointmentStatus
from .attribute import AttributeDefinition, AttributeTarget, AttributeType
from .branch import Branch, BranchMembership
from .customer import (
    ConsentChannel,
    ConsentEvent,
    Customer,
    CustomerOverride,
    CustomerSource,
    CustomerTag,
    TaggedCustomer,
)
from .deletion import DeletionRequest, DeletionStatus
from .group import CustomerGroup
from .jobs import ExportJob, ImportJob, JobStatus, SavedImportMapping
from .log_entry import ClientDBLogEntry
from .settings import ClientDBSettings

__all__ = [
    "Appointment",
    "AppointmentQuerySet",
    "AppointmentSource",
    "AppointmentStatus",
    "AttributeDefinition",
    "AttributeTarget",
    "AttributeType",
    "Branch",
    "BranchMembership",
    "ClientDBLogEntry",
    "ClientDBSettings",
    "ConsentChannel",
    "ConsentEvent",
    "Customer",
    "CustomerGroup",
    "CustomerOverride",
    "CustomerSource",
    "CustomerTag",
    "DeletionRequest",
    "DeletionStatus",
    "ExportJob",
    "ImportJob",
    "JobStatus",
    "SavedImportMapping",
    "TaggedCustomer",
]
