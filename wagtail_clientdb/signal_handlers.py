"""After every appointment change: the customers' booking counts are recounted, the
deletion queue gets another try for that customer, and a branch that lost the appointment
(deleted, moved to another branch) is told for its sync (:mod:`.removals`). A customer group
renamed or deleted is a change of its members (:func:`.groups.touch_members`)."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from . import booking_counts, deletion, groups, removals
from .models import Appointment, CustomerGroup


@receiver(pre_save, sender=Appointment, dispatch_uid="clientdb_remember_appointment_customer")
def remember_previous_customer(sender, instance, raw=False, **kwargs):
    # An appointment moved to another customer leaves the previous one with a booking less;
    # one moved to another branch leaves the previous branch's list.
    previous = None
    if instance.pk and not raw:
        previous = Appointment.objects.filter(pk=instance.pk).values_list("customer_id", "branch_id").first()
    instance._previous_customer_id, instance._previous_branch_id = previous or (None, None)


@receiver(post_save, sender=Appointment, dispatch_uid="clientdb_appointment_moved_between_branches")
def tell_the_branch_it_left(sender, instance, raw=False, **kwargs):
    previous = getattr(instance, "_previous_branch_id", None)
    if not raw and previous is not None and previous != instance.branch_id:
        removals.record_appointment_moved(instance, previous)


@receiver(post_delete, sender=Appointment, dispatch_uid="clientdb_appointment_deleted")
def tell_its_branch_it_was_deleted(sender, instance, **kwargs):
    removals.record_appointment_deleted(instance)


@receiver([post_save, post_delete], sender=Appointment, dispatch_uid="clientdb_recount_bookings")
def recount_bookings(sender, instance, raw=False, **kwargs):
    if not raw:
        booking_counts.recount([instance.customer_id, getattr(instance, "_previous_customer_id", None)])


@receiver([post_save, post_delete], sender=Appointment, dispatch_uid="clientdb_retry_deletion_after_appointment_change")
def retry_deletion_after_appointment_change(sender, instance, **kwargs):
    customer_id = instance.customer_id
    if customer_id is not None:
        transaction.on_commit(lambda: deletion.process_for_customer(customer_id))


@receiver(pre_save, sender=CustomerGroup, dispatch_uid="clientdb_remember_group_name")
def remember_group_name(sender, instance, raw=False, **kwargs):
    instance._stored_name = None if raw or instance.pk is None else (
        CustomerGroup.objects.filter(pk=instance.pk).values_list("name", flat=True).first()
    )


@receiver(post_save, sender=CustomerGroup, dispatch_uid="clientdb_group_renamed")
def tell_members_of_the_new_name(sender, instance, raw=False, **kwargs):
    if getattr(instance, "_stored_name", None) not in (None, instance.name):
        groups.touch_members(instance)


@receiver(pre_delete, sender=CustomerGroup, dispatch_uid="clientdb_group_deleted")
def tell_members_it_is_gone(sender, instance, **kwargs):
    # Before the memberships go with the group.
    groups.touch_members(instance)
