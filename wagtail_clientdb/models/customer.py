from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from taggit.managers import TaggableManager, _TaggableManager
from taggit.models import ItemBase, TagBase
from taggit.utils import require_instance_manager
from wagtail.log_actions import get_active_log_context

from ..contact import format_phone, normalise_email, normalise_text, parse_phone

#: Text fields stored in Unicode NFC.
TEXT_FIELDS = ("first_name", "last_name", "notes", "external_id")


class CustomerSource(models.TextChoices):
    MANUAL = "manual", _("Entered in the admin")
    IMPORT = "import", _("Import")
    ONLINE_BOOKING = "online_booking", _("Online booking")
    API = "api", _("API")


class ConsentChannel(models.TextChoices):
    FORM = "form", _("Booking form")
    IMPORT = "import", _("Import")
    ADMIN = "admin", _("Admin")
    API = "api", _("API")


class TagsOfVisibleCustomers(models.Manager):
    """``CustomerTag.objects``: in an admin request, the tags of customers the acting user may see.

    Wagtail's generic tag autocomplete (``/admin/tag-autocomplete/<app>/<model>/``) reads a tag
    model's ``objects``; free-text tags can hold personal data ("Müller family"), so it must
    not list the tags only another branch's customers carry. Outside an admin request there is
    no acting user and it is empty. The app itself, and taggit, use :attr:`CustomerTag.all_tags`.
    """

    def get_queryset(self):
        from .. import scope

        user = get_active_log_context().user
        if user is None or not user.is_authenticated:
            return super().get_queryset().none()
        return scope.tags_of_visible_customers(scope.viewer_for_user(user), super().get_queryset())


class FoldedNameField(models.CharField):
    """A tag's name as tag names are compared (:func:`wagtail_clientdb.tags.fold`), taken from
    the name whenever the tag is written, by ``save`` or ``bulk_create``."""

    def pre_save(self, model_instance, add):
        from ..tags import fold

        value = fold(model_instance.name)
        setattr(model_instance, self.attname, value)
        return value


class CustomerTag(TagBase):
    """Tags of customers, kept apart from the tags of pages, images and documents, which every
    admin user's tag fields suggest. Names differing only in case are one tag
    (:mod:`wagtail_clientdb.tags`)."""

    #: Casefolding may make a name longer ("ß" is "ss"), up to three times.
    folded_name = FoldedNameField(_("folded name"), max_length=300, editable=False)

    all_tags = models.Manager()
    objects = TagsOfVisibleCustomers()

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")
        # taggit reads and writes tags through the default manager.
        default_manager_name = "all_tags"
        constraints = [models.UniqueConstraint(fields=["folded_name"], name="clientdb_unique_tag_folded_name")]


class CustomerTagsManager(_TaggableManager):
    """``customer.tags`` (taggit's manager, which the admin's tag field saves through), naming
    tags by the app's rule (:mod:`wagtail_clientdb.tags`) rather than by taggit's, which
    compares names in case only when a project sets ``TAGGIT_CASE_INSENSITIVE``."""

    def _to_tag_model_instances(self, tags, tag_kwargs):
        from .. import tags as tag_names

        found = tag_names.resolve([tag for tag in tags if isinstance(tag, str)])
        result = []
        for tag in tags:
            if isinstance(tag, str):
                tag = found.get(tag_names.fold(tag))
            elif not isinstance(tag, CustomerTag):
                raise TypeError(f"Cannot add {tag!r}: expected a CustomerTag or a name.")
            if tag is not None and tag not in result:
                result.append(tag)
        return result

    @require_instance_manager
    def remove(self, *tags):
        from .. import tags as tag_names

        names = [tag.name if isinstance(tag, CustomerTag) else tag for tag in tags]
        super().remove(*(tag.name for tag in tag_names.find(names)))


class TaggedCustomer(ItemBase):
    # Indexed with the customer (below), which the tag filter and its choices read alone.
    tag = models.ForeignKey(CustomerTag, on_delete=models.CASCADE, related_name="tagged_customers", db_index=False)
    content_object = models.ForeignKey(
        "wagtail_clientdb.Customer", on_delete=models.CASCADE, related_name="tagged_items"
    )

    wagtail_reference_index_ignore = True

    @classmethod
    def tags_for(cls, model, instance=None, **extra_filters):
        """taggit's own lookup of an object's tags, through the tag model's unscoped manager."""
        if instance is not None:
            return CustomerTag.all_tags.filter(tagged_customers__content_object=instance, **extra_filters)
        return CustomerTag.all_tags.filter(tagged_customers__content_object__isnull=False, **extra_filters).distinct()

    class Meta:
        verbose_name = _("customer tag link")
        verbose_name_plural = _("customer tag links")
        constraints = [
            models.UniqueConstraint(fields=["content_object", "tag"], name="clientdb_unique_customer_tag")
        ]
        # "Does a customer this branch sees carry this tag?" (the tag filter's choices), and the
        # customers with a tag, from the index alone: 20 ms → 2 ms for twenty tags at a million customers.
        indexes = [models.Index(fields=["tag", "content_object"], name="clientdb_tag_customers")]


#: The fields :func:`name_of` reads (a page that loads only what it shows loads these).
NAME_FIELDS = ("first_name", "last_name", "email", "phone", "phone_raw")


def name_of(customer):
    """How a customer is named: the names, else the email, else the phone number. ``customer`` is
    a :class:`Customer` or one as a branch sees it (:class:`~wagtail_clientdb.overrides.EffectiveCustomer`)."""
    full_name = " ".join(part for part in (customer.first_name, customer.last_name) if part)
    return full_name or customer.email or format_phone(customer.phone, customer.phone_raw) or _("Customer %(pk)s") % {"pk": customer.pk}


class Customer(models.Model):
    """One person, one record for the whole company.

    Scope: a customer with a ``home_branch`` is *local* to that branch. Otherwise it is
    *global*: shared with all branches (``shared_with_all_branches``, irreversible) or
    with the ``branches`` listed. The rules live in :mod:`wagtail_clientdb.scope`.
    """

    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    phone_raw = models.CharField(
        _("phone"),
        max_length=64,
        blank=True,
        help_text=_("Any common format; numbers without a country prefix use the default phone region."),
    )
    phone = models.CharField(
        _("phone (E.164)"),
        max_length=20,
        blank=True,
        editable=False,
        help_text=_("The number in international E.164 form; empty when it could not be read."),
    )
    notes = models.TextField(_("notes"), blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    tags = TaggableManager(
        through=TaggedCustomer, manager=CustomerTagsManager, blank=True, verbose_name=_("tags"), help_text=""
    )
    groups = models.ManyToManyField(
        "wagtail_clientdb.CustomerGroup",
        blank=True,
        related_name="customers",
        verbose_name=_("groups"),
    )
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    source = models.CharField(
        _("source"), max_length=20, choices=CustomerSource.choices, default=CustomerSource.MANUAL
    )
    external_id = models.CharField(
        _("external ID"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("The customer's ID in another system; used to match imports."),
    )
    home_branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        verbose_name=_("local to branch"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="local_customers",
    )
    shared_with_all_branches = models.BooleanField(_("shared with all branches"), default=False)
    branches = models.ManyToManyField(
        "wagtail_clientdb.Branch",
        blank=True,
        related_name="shared_customers",
        verbose_name=_("shared with branches"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    #: Appointments in every branch that were not cancelled, kept by :mod:`wagtail_clientdb.booking_counts`.
    bookings_total = models.PositiveIntegerField(_("bookings"), default=0, editable=False)
    #: Visits in every branch that took place before :class:`VisitCounting`'s mark, and
    #: no-shows in every branch, kept by :mod:`wagtail_clientdb.booking_counts`.
    visits_total = models.PositiveIntegerField(_("visits"), default=0, editable=False)
    no_shows_total = models.PositiveIntegerField(_("no-shows"), default=0, editable=False)
    #: Set while the customer is archived (:mod:`wagtail_clientdb.archive`): out of the daily
    #: lists, not erased. Empty for active customers, the ones the listing walks.
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True, editable=False)
    archived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("archived by"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    #: Raised by every change (see :mod:`wagtail_clientdb.versions`): a save based on an
    #: older version is refused instead of overwriting what someone else saved meanwhile.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

    # Customers, and what points at them, stay out of Wagtail's reference index: its
    # "usage" pages would list them without the branch rules.
    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["last_name", "first_name", "pk"]
        permissions = [
            ("manage_global_customers", _("Can manage customers of all branches (branch manager)")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="clientdb_unique_external_id",
                violation_error_message=_("Another customer already has this external ID."),
            ),
            models.CheckConstraint(
                condition=models.Q(home_branch__isnull=True) | models.Q(shared_with_all_branches=False),
                name="clientdb_local_customer_not_shared",
                violation_error_message=_("A local customer cannot be shared with all branches."),
            ),
        ]
        indexes = [
            # Matching by email and phone compares whole values: no second index for ``LIKE 'abc%'``,
            # which Django adds for an indexed text column on PostgreSQL and every write would update.
            models.Index(fields=["email"], name="clientdb_customer_email"),
            models.Index(fields=["phone"], name="clientdb_customer_phone"),
            # The listing's default order: its first page and a full export read the index
            # instead of sorting every customer. It holds what a branch's walk checks (scope,
            # archive) and the names it returns, so the walk reads the index alone (PostgreSQL):
            # staff's page 1000 took 80 ms reading the table, 15 ms without.
            models.Index(
                Lower("last_name"),
                Lower("first_name"),
                "id",
                include=["last_name", "first_name", "home_branch", "shared_with_all_branches", "archived_at"],
                name="clientdb_customer_name_walk",
            ),
            # The same for a filter's customers (a tag's, a group's), each checked for the
            # branch's scope: counting 10,000 of a tag's took 61 ms reading the table, 32 without.
            models.Index(
                fields=["id"], include=["home_branch", "shared_with_all_branches", "archived_at"], name="clientdb_customer_scope"
            ),
            # "Most bookings" for the whole company, in the listing's order.
            models.Index(
                F("bookings_total").desc(), Lower("last_name"), Lower("first_name"), "id", name="clientdb_most_bookings"
            ),
            # "Archived only" in name order: the few archived customers, without walking the
            # whole name index past the active ones (which the other lists walk).
            models.Index(
                Lower("last_name"),
                Lower("first_name"),
                "id",
                condition=models.Q(archived_at__isnull=False),
                name="clientdb_archived_name_order",
            ),
            # The API's list of changes (``updated_since``), oldest change first: a client's copy
            # reads a range of it instead of sorting every customer for each page (head office's
            # page at a million customers: 503 → 134 ms). Archived customers too: a copy is kept
            # with them. It holds what a branch's count checks because PostgreSQL, given the
            # index without it, read it for that count and the table for each row (0.3 → 2.8 s).
            models.Index(
                fields=["updated_at", "id"],
                include=["home_branch", "shared_with_all_branches", "archived_at"],
                name="clientdb_customer_changes",
            ),
        ]

    def __str__(self):
        return name_of(self)

    @property
    def phone_display(self):
        return format_phone(self.phone, self.phone_raw)

    @property
    def phone_is_valid(self):
        return bool(self.phone) or not self.phone_raw

    @property
    def is_archived(self):
        return self.archived_at is not None

    @property
    def is_global(self):
        return self.home_branch_id is None

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded_phone = (instance.__dict__.get("phone_raw"), instance.__dict__.get("phone"))
        return instance

    def normalise_contact(self, phone_region=None):
        """Bring text, email and phone into their stored form; see :mod:`wagtail_clientdb.contact`.

        ``phone_raw`` holds the number as typed and ``phone`` its E.164 form. Code that assigns
        a number to ``phone`` (``customer.phone = "+49 30 1234567"``) means the same as assigning
        it to ``phone_raw``, so neither assignment is lost; different numbers assigned to both
        are an error.
        """
        from .settings import ClientDBSettings

        for name in TEXT_FIELDS:
            setattr(self, name, normalise_text(getattr(self, name)))
        self.email = normalise_email(self.email)
        if phone_region is None:
            phone_region = ClientDBSettings.load().default_phone_region
        loaded_raw, loaded_phone = getattr(self, "_loaded_phone", ("", ""))
        phone_written = self.phone != (loaded_phone or "")
        raw_written = self.phone_raw != (loaded_raw or "")
        typed = self.phone if phone_written and not raw_written else self.phone_raw
        parsed = parse_phone(typed, phone_region)
        if phone_written and raw_written and self.phone not in ("", parsed.e164, parsed.raw):
            raise ValueError("Assign a phone number to phone or to phone_raw, not different numbers to both.")
        self.phone_raw, self.phone = parsed.raw, parsed.e164

    def save(self, *args, **kwargs):
        self.normalise_contact(kwargs.pop("phone_region", None))
        changing = not self._state.adding and self.pk is not None
        if not changing:
            super().save(*args, **kwargs)
        else:
            # Raised in the UPDATE itself, so that concurrent saves never share a version.
            previous, self.version = self.version, F("version") + 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "version", "updated_at"}
            try:
                super().save(*args, **kwargs)
            except Exception:
                self.version = previous
                raise
            self.refresh_from_db(fields=["version"])
        self._loaded_phone = (self.phone_raw, self.phone)


class ConsentEvent(models.Model):
    """Marketing consent given or withdrawn: the history behind ``Customer.marketing_consent``."""

    wagtail_reference_index_ignore = True

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consent_events", verbose_name=_("customer")
    )
    given = models.BooleanField(_("consent given"))
    channel = models.CharField(_("channel"), max_length=20, choices=ConsentChannel.choices)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    # Where the consent was given or withdrawn: the import, the booking or the API call.
    import_job = models.ForeignKey(
        "wagtail_clientdb.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("import"),
    )
    appointment = models.ForeignKey(
        "wagtail_clientdb.Appointment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("booking"),
    )
    reference = models.CharField(_("source document"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        ordering = ["-recorded_at", "-pk"]

    def __str__(self):
        return f"{self.customer_id}: {'given' if self.given else 'withdrawn'} ({self.channel})"


class CustomerOverride(models.Model):
    """What one branch changed locally on a global customer.

    A ``None`` column means "not changed here: show the global value". The rules live in
    :mod:`wagtail_clientdb.overrides`.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="overrides", verbose_name=_("customer")
    )
    branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        on_delete=models.CASCADE,
        related_name="customer_overrides",
        verbose_name=_("branch"),
    )
    first_name = models.CharField(_("first name"), max_length=150, null=True, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, null=True, blank=True)
    email = models.EmailField(_("email"), max_length=254, null=True, blank=True)
    phone_raw = models.CharField(_("phone"), max_length=64, null=True, blank=True)
    phone = models.CharField(_("phone (E.164)"), max_length=20, null=True, blank=True)
    notes = models.TextField(_("notes"), null=True, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Raised by every change of the branch's local values (written under a row lock).
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("local customer values")
        verbose_name_plural = _("local customer values")
        constraints = [
            models.UniqueConstraint(fields=["customer", "branch"], name="clientdb_one_override_per_branch")
        ]
        indexes = [
            # The customers a branch knows by names of its own, which its listing sorts apart from
            # the walk of the name index and leaves out of that walk: read from this index alone,
            # not from the table (PostgreSQL). Not partial ("has a local name"): a search on names
            # implies that condition, and the planner then read this index instead of the
            # trigram ones where there are few local values.
            models.Index(fields=["branch", "customer"], include=["last_name", "first_name"], name="clientdb_override_names"),
        ]

    def __str__(self):
        return f"{self.customer_id} @ {self.branch_id}"


class BranchBookings(models.Model):
    """How many appointments a customer has in one branch that were not cancelled
    ("most bookings" as a branch sees it), how many of them were visits that took place
    before :class:`VisitCounting`'s mark, and how many were missed; kept by
    :mod:`wagtail_clientdb.booking_counts`."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="branch_bookings")
    branch = models.ForeignKey("wagtail_clientdb.Branch", on_delete=models.CASCADE, related_name="+")
    count = models.PositiveIntegerField(default=0)
    visits = models.PositiveIntegerField(default=0)
    no_shows = models.PositiveIntegerField(default=0)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("bookings in a branch")
        verbose_name_plural = _("bookings in branches")
        constraints = [models.UniqueConstraint(fields=["customer", "branch"], name="clientdb_unique_branch_bookings")]
        indexes = [
            # "Most bookings" as a branch sees it: read in order until the page is full.
            models.Index(fields=["branch", "-count"], name="clientdb_branch_most_bookings"),
            # A branch's "at least N visits" and "no-shows": its few customers from the index,
            # not every customer it has bookings of.
            models.Index(fields=["branch", "visits"], name="clientdb_branch_visits"),
            models.Index(fields=["branch", "no_shows"], name="clientdb_branch_no_shows"),
        ]


class VisitCounting(models.Model):
    """One row: the kept visit counts (``Customer.visits_total``, ``BranchBookings.visits``)
    hold the visits that started before ``counted_until``. Later visits are counted from the
    appointments when asked (few: the mark is moved on periodically by
    :func:`wagtail_clientdb.booking_counts.count_passed_visits`). Without the row nothing is
    kept yet, and every visit is counted when asked."""

    counted_until = models.DateTimeField()

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("visit counting")
        verbose_name_plural = _("visit counting")
