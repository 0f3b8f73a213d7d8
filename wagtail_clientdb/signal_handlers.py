"""After every appointment change: the customers' booking counts are recounted, and the
deletion queue gets another try for that customer."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from . import booking_counts, deletion
from .models import Appointment


@receiver(pre_save, sender=Appointment, dispatch_uid="clientdb_remember_appointment_customer")
def remember_previous_customer(sender, instance, raw=False, **kwargs):
    # An appointment moved to another customer leaves the previous one with a booking less.
    previous = None
    if instance.pk and not raw:
        previous = Appointment.objects.filter(pk=instance.pk).values_list("customer_id", flat=True).first()
    instance._previous_customer_id = previous


@receiver([post_save, post_delete], sender=Appointment, dispatch_uid="clientdb_recount_bookings")
def recount_bookings(sender, instance, raw=False, **kwargs):
    if not raw:
        booking_counts.recount([instance.customer_id, getattr(instance, "_previous_customer_id", None)])


@receiver([post_save, post_delete], sender=Appointment, dispatch_uid="clientdb_retry_deletion_after_appointment_change")
def retry_deletion_after_appointment_change(sender, instance, **kwargs):
    customer_id = instance.customer_id
    if customer_id is not None:
        transaction.on_commit(lambda: deletion.process_for_customer(customer_id))
