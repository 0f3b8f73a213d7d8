import datetime

import django_filters
from django import forms
from django.db import models
from django.db.models import DecimalField, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from wagtail.admin import widgets as wagtail_widgets
from wagtail.admin.active_filters import BaseFilterAdapter, register_filter_adapter_class
from wagtail.admin.filters import DateRangePickerWidget, NumberRangeWidget, WagtailFilterSet
from wagtail.admin.utils import get_user_display_name

from . import archive, attributes, groups, markup, scope, times
from . import visits as visit_rules
from .models import (
    Appointment,
    AppointmentStatus,
    AttributeTarget,
    AttributeType,
    Branch,
    Customer,
    CustomerGroup,
    CustomerOverride,
    CustomerSource,
    CustomerTag,
    Service,
    TaggedCustomer,
)

ATTRIBUTE_FILTER_PREFIX = "attribute_"
#: The customer listing's filters whose share of customers PostgreSQL's planner reads from the
#: statistics of one column or link table: a listing filtered only by them may show the
#: planner's estimate of its count ("about 41,000"); measured at a million customers, as the
#: head office and as branch staff, 0.89–1.01 of the exact count (docs/performance.md, stop 31).
#: The planner only guesses the others — rules over visits, appointments, birthdays and local
#: values (0.11–0.36 of the exact count for "has an upcoming appointment" and "birthday within
#: 7 days", 1.57 for "never visited"), attribute values, a dynamic group's rules —, and a filter
#: added later is guessed until it is named here.
ESTIMATED_FILTERS = frozenset({"branch", "tags", "groups", "marketing_consent", "source", "archived", "created"})


class YesNoFilter(django_filters.BooleanFilter):
    """A yes/no filter, whose value the listing names "Yes" or "No" when it is in force
    (Wagtail's own names it "True" or "False", in every language)."""


class YesNoFilterAdapter(BaseFilterAdapter):
    def get_active_filters(self):
        value = gettext("Yes") if self.value else gettext("No")
        return [active._replace(value=value) for active in super().get_active_filters()]


register_filter_adapter_class(YesNoFilter, YesNoFilterAdapter)


class WrittenWidgetMixin:
    """A widget of Django's (or Wagtail's) whose markup :mod:`~wagtail_clientdb.markup` writes
    instead of rendering two or three templates per option: a filter of 50 branches rendered 101
    templates on every listing page, the tags and yes/no filters as many again. (Wagtail names
    the field's CSS class after the widget's class: hence the same names.)"""

    write = None

    def render(self, name, value, attrs=None, renderer=None):
        return self.write(self.get_context(name, value, attrs)["widget"])


class Select(WrittenWidgetMixin, forms.Select):
    write = staticmethod(markup.select_html)


class CheckboxSelectMultiple(WrittenWidgetMixin, forms.CheckboxSelectMultiple):
    write = staticmethod(markup.multiple_input_html)


class RadioSelect(WrittenWidgetMixin, forms.RadioSelect):
    write = staticmethod(markup.multiple_input_html)


class BooleanRadioSelect(WrittenWidgetMixin, wagtail_widgets.BooleanRadioSelect):
    write = staticmethod(markup.multiple_input_html)


#: Each widget class, and the class that writes its markup.
WRITTEN_WIDGETS = {
    forms.Select: Select,
    forms.CheckboxSelectMultiple: CheckboxSelectMultiple,
    forms.RadioSelect: RadioSelect,
    wagtail_widgets.BooleanRadioSelect: BooleanRadioSelect,
}


class ChoicesReadAtOnce(django_filters.fields.ModelChoiceIterator):
    """The choices of a model choice filter read in one query and kept by its field for every
    reader (the drawer, the active filters). Django reads them through ``QuerySet.iterator()``,
    on PostgreSQL a server-side cursor: four round trips (DECLARE, two FETCHes, CLOSE) a filter
    on every listing page, for a few dozen tags or branches."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        if self.field.null_label is not None:
            yield (self.field.null_value, self.field.null_label)
        for obj in self.queryset:
            yield self.choice(obj)


class ModelChoiceField(django_filters.fields.ModelChoiceField):
    iterator = ChoicesReadAtOnce


class ModelMultipleChoiceField(django_filters.fields.ModelMultipleChoiceField):
    iterator = ChoicesReadAtOnce


class StaffChoiceField(ModelChoiceField):
    """Staff members named as everywhere in the admin: by full name, else by username."""

    def label_from_instance(self, obj):
        return get_user_display_name(obj)


class StaffFilter(django_filters.ModelChoiceFilter):
    field_class = StaffChoiceField


#: Each field class of django-filter's, and the class that reads its choices at once.
CHOICES_READ_AT_ONCE = {
    django_filters.fields.ModelChoiceField: ModelChoiceField,
    django_filters.fields.ModelMultipleChoiceField: ModelMultipleChoiceField,
}


class ClientDBFilterSet(WagtailFilterSet):
    """Wagtail's filter set, with a :class:`YesNoFilter` for each yes/no field, the choices of
    every filter written by :data:`WRITTEN_WIDGETS` and those of models read at once
    (:class:`ChoicesReadAtOnce`)."""

    def get_form_class(self):
        for filter_ in self.filters.values():
            filter_.field_class = CHOICES_READ_AT_ONCE.get(filter_.field_class, filter_.field_class)
            widget = filter_.extra.get("widget", filter_.field_class.widget)
            if isinstance(widget, type) and widget in WRITTEN_WIDGETS:
                filter_.extra["widget"] = WRITTEN_WIDGETS[widget]
        return super().get_form_class()

    @classmethod
    def filter_for_lookup(cls, field, lookup_type):
        filter_class, params = super().filter_for_lookup(field, lookup_type)
        if filter_class is django_filters.BooleanFilter:
            filter_class = YesNoFilter
        return filter_class, params


class WholeNumberFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class BirthdayPeriod(models.TextChoices):
    THIS_MONTH = "this_month", _("This month")


class AttributeNumberRangeWidget(NumberRangeWidget):
    """Wagtail's range widget, for any number: negative and decimal values too."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        for widget in self.widgets:
            widget.attrs.pop("min", None)
            widget.attrs["step"] = "any"


def is_parameter_of(parameter, name):
    """Whether the query ``parameter`` is the filter ``name``'s, or one of its parts' (a range's
    ``name_min`` and ``name_max``, a period's ``name_from`` and ``name_to``)."""
    return parameter == name or parameter.startswith(name + "_")


def _is_named(name, data):
    """Whether ``data`` holds a value of the filter ``name`` or of one of its parts."""
    return any(is_parameter_of(key, name) for key in data)


class CustomerFilterSet(ClientDBFilterSet):
    """Filters of the customer listing; their options never reveal customers the viewer cannot see."""

    branch = django_filters.ModelChoiceFilter(
        label=_("Location"),
        queryset=Branch.objects.order_by("name"),
        method="filter_branch",
        help_text=_("Show the customers as this branch sees them."),
    )
    tags = django_filters.ModelMultipleChoiceFilter(
        label=_("Tags"),
        queryset=CustomerTag.all_tags.none(),
        method="filter_tags",
        widget=forms.CheckboxSelectMultiple,
    )
    groups = django_filters.ModelMultipleChoiceFilter(
        label=_("Groups"),
        queryset=CustomerGroup.objects.select_related("segment").order_by("name"),
        method="filter_groups",
        widget=forms.CheckboxSelectMultiple,
    )
    marketing_consent = YesNoFilter(label=_("Marketing consent"), widget=wagtail_widgets.BooleanRadioSelect)
    source = django_filters.ChoiceFilter(label=_("Source"), choices=CustomerSource.choices)
    archived = django_filters.ChoiceFilter(
        label=_("Archived"), choices=archive.ArchivedChoice.choices, empty_label=None, method="filter_archived"
    )
    # Appointments count in the branch shown (see wagtail_clientdb.visits).
    last_visit = django_filters.DateFromToRangeFilter(
        label=_("Last visit"), widget=DateRangePickerWidget, method="filter_last_visit"
    )
    visits = django_filters.RangeFilter(label=_("Number of visits"), widget=NumberRangeWidget, method="filter_visits")
    no_shows = WholeNumberFilter(label=_("No-shows (at least)"), min_value=1, method="filter_no_shows")
    upcoming_appointment = YesNoFilter(
        label=_("Has an upcoming appointment"), widget=wagtail_widgets.BooleanRadioSelect, method="filter_upcoming_appointment"
    )
    birthday = django_filters.ChoiceFilter(
        label=_("Birthday"), choices=BirthdayPeriod.choices, method="filter_birthday"
    )
    birthday_within = WholeNumberFilter(
        label=_("Birthday within (days)"),
        min_value=0,
        max_value=visit_rules.MAX_BIRTHDAY_DAYS,
        method="filter_birthday_within",
        help_text=_("0 is today, 7 is today and the next seven days."),
    )
    created = django_filters.DateFromToRangeFilter(
        label=pgettext_lazy("when", "Created"), widget=DateRangePickerWidget, method="filter_created"
    )
    local_values = YesNoFilter(
        label=_("Has local values"),
        widget=wagtail_widgets.BooleanRadioSelect,
        method="filter_local_values",
        help_text=_("Values the branch shown keeps for itself (any branch's, company-wide)."),
    )

    class Meta:
        model = Customer
        fields = ["branch", "tags", "groups", "marketing_consent", "source", "archived"]

    def __init__(self, data=None, *args, request=None, viewer=None, only_named=False, **kwargs):
        """``only_named``: keep only the filters ``data`` names (and "Archived", which always
        holds), for a query that is run but not shown — a dynamic group's rule, run for every
        listing page, built all sixteen filters and their choices to apply one or two."""
        if data is not None and not data.get("archived"):
            data = data.copy()
            data["archived"] = archive.DEFAULT_CHOICE
        super().__init__(data, *args, request=request, **kwargs)
        if only_named:
            for name in [name for name in self.filters if name != "archived" and not _is_named(name, data)]:
                del self.filters[name]
        # The default choice is not "filtering" (the listing says so only for the others).
        self.filters["archived"].extra["initial"] = archive.DEFAULT_CHOICE
        self.viewer = viewer = viewer or scope.viewer_for_request(request)
        if not viewer.is_manager:
            self.filters.pop("branch", None)
        elif "branch" in self.filters:
            self.filters["branch"].queryset = Branch.objects.order_by("name")
        if "tags" in self.filters:
            self.filters["tags"].queryset = scope.tags_of_visible_customers(viewer).order_by("name")
        self.attribute_definitions = []
        if not only_named or any(key.startswith(ATTRIBUTE_FILTER_PREFIX) for key in data):
            self.attribute_definitions = attributes.active_definitions(AttributeTarget.CUSTOMER)
        for definition in self.attribute_definitions:
            name = ATTRIBUTE_FILTER_PREFIX + definition.key
            if only_named and not _is_named(name, data):
                continue
            self.filters[name] = attribute_filter(definition, lambda: self.shown_branch)
            self.filters[name].field_name = name
            self.filters[name].model = Customer
        if self.attribute_definitions and not only_named:
            self.filters["show_attributes"] = django_filters.MultipleChoiceFilter(
                label=_("Show attribute columns"),
                choices=[(d.key, d.label) for d in self.attribute_definitions],
                widget=forms.CheckboxSelectMultiple,
                method=lambda queryset, name, value: queryset,
            )

    def filter_branch(self, queryset, name, value):
        return queryset.filter(scope.visible_in_branches_q([value])) if value else queryset

    @property
    def shown_branch(self):
        """The branch whose values the listing shows (``None``: the company's)."""
        if not self.viewer.is_manager:
            return self.viewer.branch
        return self.form.cleaned_data.get("branch")

    def filter_archived(self, queryset, name, value):
        return archive.in_list(queryset, value)

    # Days begin at midnight on the clock of the listing: the branch's, or the company's.

    def _midnight(self, day):
        return times.start_of_day(day, self.shown_branch)

    def filter_last_visit(self, queryset, name, value):
        since = self._midnight(value.start.date()) if value.start is not None else None
        before = self._midnight(value.stop.date() + datetime.timedelta(days=1)) if value.stop is not None else None
        return queryset.filter(visit_rules.last_visit_q(self.shown_branch, since, before))

    def filter_visits(self, queryset, name, value):
        return queryset.filter(visit_rules.number_of_visits_q(self.shown_branch, value.start, value.stop))

    def filter_no_shows(self, queryset, name, value):
        return queryset.filter(visit_rules.no_shows_q(self.shown_branch, value))

    def filter_upcoming_appointment(self, queryset, name, value):
        upcoming = visit_rules.upcoming_appointment_q(self.shown_branch)
        return queryset.filter(upcoming if value else ~upcoming)

    def filter_birthday(self, queryset, name, value):
        return queryset.filter(visit_rules.birthday_as_seen_q(self.shown_branch, times.today(self.shown_branch)))

    def filter_birthday_within(self, queryset, name, value):
        return queryset.filter(visit_rules.birthday_as_seen_q(self.shown_branch, times.today(self.shown_branch), value))

    def filter_created(self, queryset, name, value):
        if value.start is not None:
            queryset = queryset.filter(created_at__gte=self._midnight(value.start.date()))
        if value.stop is not None:
            queryset = queryset.filter(created_at__lt=self._midnight(value.stop.date() + datetime.timedelta(days=1)))
        return queryset

    def filter_local_values(self, queryset, name, value):
        local = CustomerOverride.objects.all()
        if self.shown_branch is not None:
            local = local.filter(branch=self.shown_branch)
        kept = Q(pk__in=local.values("customer_id"))
        return queryset.filter(kept if value else ~kept)

    def filter_tags(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(pk__in=TaggedCustomer.objects.filter(tag__in=value).values("content_object"))

    def filter_groups(self, queryset, name, value):
        # Dynamic groups by their rule, in the viewer's scope (wagtail_clientdb.groups).
        return queryset.filter(groups.in_any_q(self.viewer, value)) if value else queryset

    @property
    def groups_of_everyone_listed(self):
        """The group every customer listed is in: the one group the filter chose, if one."""
        chosen = list(self.form.cleaned_data.get("groups") or []) if self.is_valid() else []
        return chosen if len(chosen) == 1 else []


class AppointmentPeriod(models.TextChoices):
    TODAY_AND_LATER = "today_and_later", _("Today and later")
    PAST = "past", _("Before today")
    ALL = "all", _("All")


class AppointmentFilterSet(ClientDBFilterSet):
    """Filters of the appointment listing; their options are the viewer's branches and staff.

    Without a choice of period the listing shows today's and later appointments: what a front
    desk works from, and what the (start) indexes answer without reading years of history.
    """

    period = django_filters.ChoiceFilter(
        label=_("Period"), choices=AppointmentPeriod.choices, empty_label=None, method="filter_period"
    )
    start = django_filters.DateFromToRangeFilter(label=_("Date"), widget=DateRangePickerWidget, method="filter_days")
    status = django_filters.ChoiceFilter(label=_("Status"), choices=AppointmentStatus.choices)
    branch = django_filters.ModelChoiceFilter(label=_("Branch"), queryset=Branch.objects.none())
    service = django_filters.ModelChoiceFilter(label=_("Service"), queryset=Service.objects.none())
    staff = StaffFilter(label=_("Staff member"), queryset=Branch.objects.none())

    class Meta:
        model = Appointment
        fields = ["period", "start", "status", "branch", "service", "staff"]

    def __init__(self, data=None, *args, request=None, **kwargs):
        if data is not None and not data.get("period"):
            data = data.copy()
            data["period"] = AppointmentPeriod.TODAY_AND_LATER
        super().__init__(data, *args, request=request, **kwargs)
        # The default period is not "filtering" (the listing says so only for other choices).
        self.filters["period"].extra["initial"] = AppointmentPeriod.TODAY_AND_LATER
        self.viewer = viewer = scope.viewer_for_request(request)
        self.filters["branch"].queryset = scope.visible_branches(viewer).order_by("name")
        self.filters["staff"].queryset = scope.staff_choices(viewer)
        self.filters["service"].queryset = scope.visible_services(viewer).order_by("name")

    # Days begin at midnight on the clock of the view: the branch's, or the company's
    # (:mod:`wagtail_clientdb.times`).

    def filter_period(self, queryset, name, value):
        today = times.start_of_day(times.today(self.viewer), self.viewer)
        if value == AppointmentPeriod.TODAY_AND_LATER:
            return queryset.filter(start__gte=today)
        if value == AppointmentPeriod.PAST:
            return queryset.filter(start__lt=today)
        return queryset

    def filter_days(self, queryset, name, value):
        if value and value.start is not None:
            queryset = queryset.filter(start__gte=times.start_of_day(value.start.date(), self.viewer))
        if value and value.stop is not None:
            next_day = value.stop.date() + datetime.timedelta(days=1)
            queryset = queryset.filter(start__lt=times.start_of_day(next_day, self.viewer))
        return queryset


def attribute_filter(definition, shown_branch):
    """A listing filter for one customer attribute, on the values the branch shown
    (``shown_branch()``) sees.

    Choices and yes/no are facets; text is "contains"; numbers and dates are ranges.
    """
    path = f"eff_attributes__{definition.key}"
    label = definition.label
    field_type = definition.field_type

    if field_type == AttributeType.CHOICE:
        return django_filters.MultipleChoiceFilter(
            label=label,
            choices=[(option, option) for option in definition.choices or []],
            widget=forms.CheckboxSelectMultiple,
            method=lambda qs, name, value: attributes.with_value(qs, shown_branch(), definition.key, value) if value else qs,
        )
    if field_type == AttributeType.BOOLEAN:
        return YesNoFilter(
            label=label,
            widget=wagtail_widgets.BooleanRadioSelect,
            method=lambda qs, name, value: attributes.with_value(qs, shown_branch(), definition.key, [value]),
        )
    if field_type in (AttributeType.TEXT, AttributeType.TEXTAREA):
        return django_filters.CharFilter(
            label=label, method=lambda qs, name, value: qs.filter(**{f"{path}__icontains": value}) if value else qs
        )
    if field_type in (AttributeType.INTEGER, AttributeType.DECIMAL):
        # Decimals are stored as strings: compare them as numbers, not as text.
        value_of = Cast(KeyTextTransform(definition.key, "eff_attributes"), DecimalField(max_digits=30, decimal_places=6))

        def filter_range(qs, name, value):
            if value and value.start is not None:
                qs = qs.filter(Q(**{f"{path}__isnull": False}), GreaterThanOrEqual(value_of, value.start))
            if value and value.stop is not None:
                qs = qs.filter(Q(**{f"{path}__isnull": False}), LessThanOrEqual(value_of, value.stop))
            return qs

        return django_filters.RangeFilter(label=label, widget=AttributeNumberRangeWidget, method=filter_range)
    if field_type == AttributeType.DATE:
        text_of = KeyTextTransform(definition.key, "eff_attributes")

        def filter_dates(qs, name, value):
            # ISO dates sort as text.
            if value and value.start is not None:
                qs = qs.filter(GreaterThanOrEqual(text_of, value.start.date().isoformat()))
            if value and value.stop is not None:
                qs = qs.filter(LessThanOrEqual(text_of, value.stop.date().isoformat()))
            return qs

        return django_filters.DateFromToRangeFilter(label=label, widget=DateRangePickerWidget, method=filter_dates)
    raise ValueError(field_type)


class ServiceFilterSet(ClientDBFilterSet):
    branches = django_filters.ModelChoiceFilter(label=_("Offered by"), queryset=Branch.objects.none())

    class Meta:
        model = Service
        fields = ["is_active", "branches"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["branches"].queryset = scope.visible_branches(scope.viewer_for_request(request)).order_by("name")
