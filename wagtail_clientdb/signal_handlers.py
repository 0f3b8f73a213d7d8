"""After every appointment change, the deletion queue gets another try for that customer."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import deletion
from .models import Appointment


@receiver([post_save, post_delete], sender=Appointment, dispatch_uid="clientdb_retry_deletion_after_appointment_change")
def retry_deletion_after_appointment_change(sender, instance, **kwargs):
    customer_id = instance.customer_id
    if customer_id is not None:
        transaction.on_commit(lambda: deletion.process_for_customer(customer_id))
