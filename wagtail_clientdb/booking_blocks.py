"""Blocked from online booking: one rule for the booking page and the API.

A block belongs to a customer but follows the person: someone booking online is refused when
any blocked customer shares an identity key with them — the external ID, an email or a phone
number, of the record or of a branch's local values — or has the same name and birthday, or
the duplicate rules say it may be them (:mod:`wagtail_clientdb.duplicates`).
So a new email does not get round it while the phone number is the same. A block applies in
every branch unless a manager names the branches it applies to. Bookings that staff make in
the admin are not affected: the block is about the business taking bookings unseen.

The refusal says nothing about why (:class:`BlockedFromOnlineBooking` words it politely), so
that a booking form does not tell a visitor who is blocked.
"""

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import log

from . import duplicates, scope
from .deletion import BookingRefused
from .models import AppointmentSource, OnlineBookingBlock

#: The appointments a block refuses: those the business takes without staff in between.
BLOCKED_SOURCES = (AppointmentSource.ONLINE_BOOKING, AppointmentSource.API)


class BlockedFromOnlineBooking(BookingRefused):
    def __init__(self):
        super().__init__(_("We cannot book this online. Please call the branch."), code="blocked")


def _same_person(customer):
    """Blocked customers who may be ``customer``: a key of it matches a key of theirs."""
    emails = {customer.email, *customer.overrides.exclude(email=None).exclude(email="").values_list("email", flat=True)}
    phones = {customer.phone, *customer.overrides.exclude(phone=None).exclude(phone="").values_list("phone", flat=True)}
    emails.discard("")
    phones.discard("")
    same = Q(customer=customer.pk)
    if customer.external_id:
        same |= Q(customer__external_id=customer.external_id)
    if emails:
        same |= Q(customer__email__in=emails) | Q(customer__overrides__email__in=emails)
    if phones:
        same |= Q(customer__phone__in=phones) | Q(customer__overrides__phone__in=phones)
    if customer.birthday and customer.first_name and customer.last_name:
        same |= Q(
            customer__birthday=customer.birthday,
            customer__first_name__iexact=customer.first_name,
            customer__last_name__iexact=customer.last_name,
        )
    return same


def block_for(customer, branch):
    """The block that keeps ``customer`` (or someone who is the same person) from booking
    online in ``branch``, or ``None``: by the identity keys, then by the duplicate rules
    (a similar name with the same birthday or the same end of the phone number)."""
    applies_here = Q(branches=None) | Q(branches=branch)
    blocks = OnlineBookingBlock.objects.filter(applies_here)
    found = blocks.filter(_same_person(customer)).order_by("pk").first()
    if found is not None or not blocks.exists():
        return found
    # Everyone counts, whichever branch they belong to: the head office's view of the company.
    company = scope.Viewer(None, True)
    person = duplicates.Person(
        first_name=customer.first_name, last_name=customer.last_name, email=customer.email or "",
        phone=customer.phone or "", phone_raw=customer.phone_raw or "", birthday=customer.birthday,
    )
    (alike,) = duplicates.find(company, [person], limit=20, exclude=[customer.pk])
    if not alike:
        return None
    return blocks.filter(customer__in=[match.customer.pk for match in alike]).order_by("pk").first()


def check_may_book(appointment):
    """Raise :class:`BlockedFromOnlineBooking` for an online or API booking of a blocked person."""
    if appointment.source in BLOCKED_SOURCES and block_for(appointment.customer, appointment.branch_id):
        raise BlockedFromOnlineBooking()


@transaction.atomic
def block(customer, *, reason, branches=(), user=None):
    """Block (or change the block of) ``customer``; ``branches`` empty: every branch."""
    found, created = OnlineBookingBlock.objects.update_or_create(
        customer=customer, defaults={"reason": reason, **({"created_by": user} if user else {})}
    )
    found.branches.set(branches)
    log(customer, "wagtail_clientdb.booking_block" if created else "wagtail_clientdb.booking_block_changed", user=user,
        data={"reason": reason, "branches": sorted(branch.slug for branch in branches)})
    return found


@transaction.atomic
def lift(customer, *, user=None):
    """Take online bookings from ``customer`` again."""
    deleted, _counts = OnlineBookingBlock.objects.filter(customer=customer).delete()
    if deleted:
        log(customer, "wagtail_clientdb.booking_unblock", user=user)


def block_of(customer):
    return OnlineBookingBlock.objects.filter(customer=customer).prefetch_related("branches").first() if customer.pk else None

