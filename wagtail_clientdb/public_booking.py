"""The public booking page: choose a service and a free time, say who you are, book.

Works without JavaScript: the service and the day are chosen with a GET form, which then
lists the free times beside the booking form. A booking is one transaction: the person is
found or registered (:mod:`wagtail_clientdb.registration`, with the identity rule), then
booked with the branch locked (:func:`wagtail_clientdb.booking.book_online`), so that a time
taken meanwhile leaves nothing behind. The form carries a token: sent twice, it books once.
A honeypot field and a limit of bookings per IP address and hour answer abuse politely.
"""

import datetime
import secrets

from django import forms
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import attributes, booking, conf, consent, matching, registration, scope, tasks, times
from .contact import PHONE_INVALID_MESSAGE, normalise_email, normalise_text, parse_phone
from .deletion import BookingRefused
from .models import AttributeTarget, ClientDBSettings, ConsentChannel, CustomerSource, Service

TEMPLATE = "wagtail_clientdb/booking/booking_page.html"
BOOKED_SALT = "wagtail_clientdb.booked"
#: How many days ahead the day picker offers.
DAYS_AHEAD = 60


def booking_definitions(target):
    return [d for d in attributes.active_definitions(target) if d.show_in_booking_form]


class BookingForm(forms.Form):
    """Who books, the time, and the attributes marked "shown in the booking form"."""

    start = forms.ChoiceField(label=gettext_lazy("Time"), widget=forms.RadioSelect)
    first_name = forms.CharField(label=gettext_lazy("First name"), max_length=150)
    last_name = forms.CharField(label=gettext_lazy("Last name"), max_length=150)
    email = forms.EmailField(label=gettext_lazy("Email"), max_length=254)
    phone = forms.CharField(label=gettext_lazy("Phone"), max_length=64, required=False)
    marketing_consent = forms.BooleanField(
        label=gettext_lazy("Yes, you may send me offers and news by email."), required=False
    )
    #: Left empty by people; filled by robots that fill every field.
    website = forms.CharField(label=gettext_lazy("Leave this field empty"), required=False)
    token = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, slots=(), **kwargs):
        super().__init__(*args, **kwargs)
        # The slots are on their branch's clock (booking.free_slots).
        self.fields["start"].choices = [(slot.isoformat(), times.clock(slot, slot.tzinfo)) for slot in slots]
        self.customer_definitions = booking_definitions(AttributeTarget.CUSTOMER)
        self.booking_definitions = booking_definitions(AttributeTarget.BOOKING)
        required = lambda definition: definition.required_in_booking_form  # noqa: E731
        attributes.add_form_fields(self, self.customer_definitions, {}, required=required)
        attributes.add_form_fields(self, self.booking_definitions, {}, required=required)

    def clean_email(self):
        return normalise_email(self.cleaned_data["email"])

    def clean_phone(self):
        region = ClientDBSettings.load().default_phone_region
        parsed = parse_phone(self.cleaned_data.get("phone"), region)
        if not parsed.is_valid:
            raise ValidationError(PHONE_INVALID_MESSAGE, params={"region": region})
        return parsed.raw

    def clean_start(self):
        return datetime.datetime.fromisoformat(self.cleaned_data["start"])

    @property
    def is_robot(self):
        return bool(self.data.get(self.add_prefix("website")))

    def details(self):
        data = self.cleaned_data
        return registration.ContactDetails(
            first_name=normalise_text(data["first_name"].strip()),
            last_name=normalise_text(data["last_name"].strip()),
            email=data["email"],
            phone=data.get("phone", ""),
            consent=data.get("marketing_consent") or None,
            attributes=attributes.values_from_form(self, self.customer_definitions),
        )

    def booking_attributes(self):
        return attributes.values_from_form(self, self.booking_definitions)


def page_viewer(page):
    """The booking page acts as its branch: it finds the customers the branch sees."""
    return scope.Viewer(None, False, (page.branch,))


def _chosen(page, request):
    """The service and day of the request (query string or form), or ``None`` for each."""
    params = request.POST if request.method == "POST" else request.GET
    service = Service.objects.offered_by(page.branch).filter(pk=params.get("service") or 0).first()
    today = times.today(page.branch)
    try:
        day = datetime.date.fromisoformat(params.get("date", ""))
    except ValueError:
        day = today
    return service, min(max(day, today), today + datetime.timedelta(days=DAYS_AHEAD))


def _over_rate_limit(request):
    key = f"wagtail_clientdb:booking:{request.META.get('REMOTE_ADDR', '')}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    return count > conf.get("BOOKING_RATE_LIMIT")


def booking_view(page, request):
    service, day = _chosen(page, request)
    slots = booking.free_slots(page.branch, service, day) if service else []
    form = None
    status = 200
    if service is not None:
        if request.method == "POST":
            form = BookingForm(request.POST, slots=slots)
            if form.is_robot or _over_rate_limit(request):
                return _refusal(page, request)
            already = page.branch.appointments.filter(booking_token=request.POST.get("token") or None).first()
            if already is not None:  # the same form sent again
                return redirect(page.url + page.reverse_subpage("booked", args=(booked_token(already),)))
            if form.is_valid():
                try:
                    appointment = _book(page, service, form)
                except BookingRefused:
                    # The record is on its way out (a deletion the person may have asked for):
                    # nothing a visitor should read about; the branch can help.
                    form.add_error(None, _("We cannot book this online. Please call the branch."))
                except (booking.SlotTaken, matching.NoSafeMatch, ValidationError) as problem:
                    form.add_error(None, problem.messages)
                    slots = booking.free_slots(page.branch, service, day)
                    form.fields["start"].choices = BookingForm(slots=slots).fields["start"].choices
                else:
                    _send_confirmation(page, request, appointment)
                    return redirect(page.url + page.reverse_subpage("booked", args=(booked_token(appointment),)))
            status = 400
        else:
            form = BookingForm(initial={"token": secrets.token_urlsafe(24)}, slots=slots)
    today = times.today(page.branch)
    return TemplateResponse(
        request,
        TEMPLATE,
        {
            "page": page,
            "self": page,
            "services": Service.objects.offered_by(page.branch),
            "service": service,
            "day": day,
            "previous_day": day - datetime.timedelta(days=1) if day > today else None,
            "next_day": day + datetime.timedelta(days=1) if day < today + datetime.timedelta(days=DAYS_AHEAD) else None,
            "today": today,
            "last_day": today + datetime.timedelta(days=DAYS_AHEAD),
            "slots": slots,
            "form": form,
        },
        status=status,
    )


@transaction.atomic
def _book(page, service, form):
    """Find or register the person, then book; a time taken meanwhile leaves nothing behind."""
    found = registration.register(
        page_viewer(page), form.details(), source=CustomerSource.ONLINE_BOOKING, channel=ConsentChannel.FORM
    )
    appointment = booking.book_online(
        page.branch,
        service,
        form.cleaned_data["start"],
        found.customer,
        booking_token=form.cleaned_data["token"],
        attributes={k: v for k, v in form.booking_attributes().items() if v is not None},
    )
    consent.link_to_booking(found.consent, appointment)
    return appointment


def _refusal(page, request):
    return TemplateResponse(request, TEMPLATE, {"page": page, "self": page, "refused": True}, status=429)


def booked_token(appointment):
    return booking.signed_token(appointment.pk, BOOKED_SALT)


def _describe(appointment):
    """The appointment as its customer reads it: on the branch's clock, the day written out."""
    branch = appointment.branch
    return {
        "appointment": appointment,
        "when": f"{times.long_day(appointment.start, branch)}, {times.span(appointment.start, appointment.end, branch)}",
    }


def booked_view(page, request, token):
    pk = booking.unsigned_token(token, BOOKED_SALT)
    appointment = page.branch.appointments.select_related("service", "customer", "branch").filter(pk=pk or 0).first()
    if appointment is None:
        return TemplateResponse(request, TEMPLATE, {"page": page, "self": page, "unknown": True}, status=404)
    return TemplateResponse(request, TEMPLATE, {"page": page, "self": page, "booked": True, **_describe(appointment)})


def cancel_view(page, request, token):
    """The link in the confirmation email: GET asks, POST cancels (a mail scanner's GET cancels nothing)."""
    appointment = booking.appointment_for_cancel_token(token)
    if appointment is None or appointment.branch_id != page.branch_id:
        return TemplateResponse(request, TEMPLATE, {"page": page, "self": page, "unknown": True}, status=404)
    context = {"page": page, "self": page, "cancelling": True, **_describe(appointment)}
    if request.method == "POST":
        try:
            booking.cancel_by_customer(appointment)
        except ValidationError as refusal:
            context["cancel_refused"] = " ".join(refusal.messages)
        else:
            context["cancelled"] = True
    elif refusal := booking.cancel_refusal(appointment):
        context["cancel_refused"] = " ".join(refusal.messages)
    return TemplateResponse(request, TEMPLATE, context, status=409 if context.get("cancel_refused") else 200)


def _send_confirmation(page, request, appointment):
    customer = appointment.customer
    if not customer.email:
        return
    cancel_url = request.build_absolute_uri(page.url + page.reverse_subpage("cancel", args=(booking.cancel_token(appointment),)))
    context = {
        **_describe(appointment),
        "branch": page.branch,
        "customer": customer,
        "cancel_url": cancel_url,
        "cancel_until": times.moment(booking.cancellation_deadline(appointment), appointment.branch),
    }
    subject = _("Your appointment: %(service)s on %(day)s") % {
        "service": appointment.service,
        "day": times.moment(appointment.start, appointment.branch),
    }
    body = render_to_string("wagtail_clientdb/booking/confirmation_email.txt", context, request)
    transaction.on_commit(lambda: tasks.send_booking_confirmation.enqueue(str(subject), body, customer.email))
