from .appointment import Appointment, AppointmentQuerySet, AppointmentSource, AppointmentStatus
from .attribute import AttributeDefinition, AttributeTarget, AttributeType
from .branch import Branch, BranchMembership
from .customer import (
    ConsentChannel,
    ConsentEvent,
    Customer,
    CustomerOverride,
    CustomerSource,
    TaggedCustomer,
)
from .deletion import DeletionRequest, DeletionStatus
from .group import CustomerGroup
from .jobs import ExportJob, ImportJob, JobStatus, SavedImportMapping
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
    "ClientDBSettings",
    "ConsentChannel",
    "ConsentEvent",
    "Customer",
    "CustomerGroup",
    "CustomerOverride",
    "CustomerSource",
    "DeletionRequest",
    "DeletionStatus",
    "ExportJob",
    "ImportJob",
    "JobStatus",
    "SavedImportMapping",
    "TaggedCustomer",
]
