import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.utils import get_user_display_name

from .. import attributes, booking, consent, matching, registration, scope, times
from ..contact import PHONE_INVALID_MESSAGE, normalise_email, normalise_text, parse_phone
from ..deletion import BookingRefused
from ..models import AttributeTarget, ClientDBSettings, ConsentChannel, CustomerSource, Service

#: The fields of a customer typed into the booking form, and the customer fields they fill.
NEW_CUSTOMER_FIELDS = {
    "new_first_name": "first_name",
    "new_last_name": "last_name",
    "new_phone": "phone",
    "new_email": "email",
    "new_notes": "notes",
}


class BranchClockDateTimeField(forms.DateTimeField):
    """A date and time shown and typed on the clock of the appointment's branch
    (:mod:`wagtail_clientdb.times`), not on the active time zone. ``clock()`` gives the zone."""

    clock = staticmethod(times.company_zone)

    def prepare_value(self, value):
        if isinstance(value, datetime.datetime):
            value = times.naive(value, self.clock())
        return super().prepare_value(value)

    def to_python(self, value):
        with timezone.override(self.clock()):
            value = super().to_python(value)
        if value is not None and (message := times.outside_the_years(value)):
            raise ValidationError(message, code="out_of_range")
        return value


def on_branch_clock(field, clock):
    """Make a form's DateTimeField a :class:`BranchClockDateTimeField` reading ``clock()``."""
    field.__class__ = BranchClockDateTimeField
    field.clock = clock
    return field


class AppointmentForm(WagtailAdminModelForm):
    """Appointments are booked for customers and in branches the viewer can see.

    The customer is chosen, or typed in as a new customer: someone already known by that
    email or phone (the identity rule of :mod:`wagtail_clientdb.matching`) is booked instead
    of being entered twice, and the view says who it was.
    """

    new_first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    new_last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    new_phone = forms.CharField(label=_("Phone"), max_length=64, required=False)
    new_email = forms.EmailField(label=_("Email"), max_length=254, required=False)
    new_consent = forms.BooleanField(label=_("Marketing consent"), required=False)
    new_notes = forms.CharField(label=_("Note about the customer"), widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args, viewer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.viewer = viewer
        self.registration = None
        self.attribute_definitions = attributes.active_definitions(AttributeTarget.BOOKING)
        attributes.add_form_fields(self, self.attribute_definitions, self.instance.attributes)
        self.fields["customer"].required = False
        self.fields["end"].required = False
        self.fields["end"].help_text = _("Empty: the start plus the service's duration.")
        for name in ("start", "end"):
            on_branch_clock(self.fields[name], self.branch_clock)
        self.fields["start"].help_text = _("The branch's local time.")
        current_service = Service.objects.filter(pk=self.instance.service_id)
        self.fields["service"].queryset = (Service.objects.active() | current_service).order_by("name")
        if viewer is not None:
            offered = Service.objects.active().filter(branches__in=scope.visible_branches(viewer)).values("pk")
            self.fields["service"].queryset = (Service.objects.filter(pk__in=offered) | current_service).order_by("name")
            self.fields["customer"].queryset = scope.visible_customers(viewer)
            self.fields["customer"].widget.branch = viewer.branch  # the chosen customer named as the branch knows them
            self.fields["branch"].queryset = scope.visible_branches(viewer).order_by("name")
            if viewer.branch is not None and not self.instance.pk:
                self.fields["branch"].initial = viewer.branch.pk
            # The staff member already booked stays a valid choice, even after leaving the branch.
            current_staff = get_user_model().objects.filter(pk=self.instance.staff_id)
            self.fields["staff"].queryset = scope.staff_choices(viewer) | current_staff
            self.fields["staff"].label_from_instance = get_user_display_name

    def branch_clock(self):
        """The clock start and end are shown and typed on: the chosen branch's (else the
        appointment's, the viewer's branch's, the company's)."""
        if getattr(self, "_branch_clock", None) is None:
            self._branch_clock = self._find_branch_clock()
        return self._branch_clock

    def _find_branch_clock(self):
        if self.is_bound:
            chosen = self.data.get(self.add_prefix("branch"))
            try:
                branch = self.fields["branch"].queryset.filter(pk=chosen).first() if chosen else None
            except (ValueError, TypeError, ValidationError):
                branch = None
            if branch is not None:
                return branch.zoneinfo
        if self.instance.branch_id:
            return self.instance.branch.zoneinfo
        return times.zone_of(self.viewer)

    def clean_new_email(self):
        return normalise_email(self.cleaned_data.get("new_email"))

    def clean_new_phone(self):
        region = ClientDBSettings.load().default_phone_region
        parsed = parse_phone(self.cleaned_data.get("new_phone"), region)
        if not parsed.is_valid:
            raise forms.ValidationError(PHONE_INVALID_MESSAGE, params={"region": region})
        return parsed.raw

    @property
    def new_customer_details(self):
        """The new customer typed in, or ``None``."""
        values = {target: normalise_text(self.cleaned_data.get(name) or "") for name, target in NEW_CUSTOMER_FIELDS.items()}
        if not any(values.values()):
            return None
        return registration.ContactDetails(**values, consent=self.cleaned_data.get("new_consent"))

    def clean(self):
        cleaned = super().clean()
        start, end, service = cleaned.get("start"), cleaned.get("end"), cleaned.get("service")
        moved = self.instance.pk and start and "start" in self.changed_data and "end" not in self.changed_data
        if moved and end and self.instance.end:
            # A new start with the end as it was: the appointment is moved, not shortened.
            end = cleaned["end"] = self.instance.end + (start - self.instance.start)
        if start and not end and service:
            cleaned["end"] = self.instance.end = service.end_for(start)
        elif start and end and end <= start:
            self.add_error("end", _("The appointment must end after it starts."))
        elif start and not end:
            self.add_error("end", _("Enter the end, or choose a service."))
        staff, branch = cleaned.get("staff"), cleaned.get("branch")
        reassigned = {"staff", "branch"} & set(self.changed_data)
        if staff and branch and reassigned and not branch.memberships.filter(user=staff).exists():
            self.add_error(
                "staff", _("%(staff)s does not work in %(branch)s.") % {"staff": get_user_display_name(staff), "branch": branch}
            )
        if service and branch and {"service", "branch"} & set(self.changed_data) and not service.branches.filter(pk=branch.pk).exists():
            self.add_error("service", _("%(branch)s does not offer %(service)s.") % {"branch": branch, "service": service})
        self._clean_customer(cleaned)
        return cleaned

    def _clean_customer(self, cleaned):
        details = self.new_customer_details if not self.errors.get("new_phone") and not self.errors.get("new_email") else None
        if cleaned.get("customer") and details:
            self.add_error("customer", _("Choose a customer or enter a new one, not both."))
        elif not cleaned.get("customer") and not details and "customer" not in self.errors:
            self.add_error("customer", _("Choose a customer, or enter a new customer below."))
        elif details and self.viewer is not None:
            region = ClientDBSettings.load().default_phone_region
            keys = matching.IdentityKeys.from_input(email=details.email, phone=details.phone, region=region)
            try:
                matching.find_customer(self.viewer, keys)
            except matching.NoSafeMatch as problem:
                for key, messages in problem.message_dict.items():
                    self.add_error(f"new_{key}", messages)

    def _post_clean(self):
        super()._post_clean()
        if not self.errors and self.instance.customer_id:
            try:
                booking.check_can_book(self.instance)
            except BookingRefused as refusal:
                self.add_error("customer", refusal)

    @transaction.atomic
    def save(self, commit=True):
        """Saves through :func:`wagtail_clientdb.booking.save_appointment`, which may raise BookingRefused;
        a new customer typed in is registered (or found) first."""
        self.instance.attributes = attributes.merged(
            self.instance.attributes, attributes.values_from_form(self, self.attribute_definitions)
        )
        appointment = super().save(commit=False)
        details = self.new_customer_details
        if details is not None:
            self.registration = registration.register(
                self.viewer,
                details,
                source=CustomerSource.MANUAL,
                channel=ConsentChannel.ADMIN,
                user=self.for_user,
                share_with=appointment.branch,
            )
            appointment.customer = self.registration.customer
        if commit:
            booking.save_appointment(appointment)
            self.save_m2m()
            if details is not None:
                consent.link_to_booking(self.registration.consent, appointment)
        return appointment


#: The fields of a user that Wagtail's ``get_user_display_name`` reads (its full name, or else
#: its username): what a page that names staff members loads of them.
STAFF_NAME_FIELDS = ("first_name", "last_name", "username")
