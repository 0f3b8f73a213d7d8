from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from taggit.managers import TaggableManager
from taggit.models import TaggedItemBase

from ..contact import format_phone, normalise_email, parse_phone


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


class TaggedCustomer(TaggedItemBase):
    content_object = models.ForeignKey(
        "wagtail_clientdb.Customer", on_delete=models.CASCADE, related_name="tagged_items"
    )

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")


class Customer(models.Model):
    """One person, one record for the whole company.

    Scope: a customer with a ``home_branch`` is *local* to that branch. Otherwise it is
    *global*: shared with all branches (``shared_with_all_branches``, irreversible) or
    with the ``branches`` listed. The rules live in :mod:`wagtail_clientdb.scope`.
    """

    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True, db_index=True)
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
        db_index=True,
        editable=False,
        help_text=_("The number in international E.164 form; empty when it could not be read."),
    )
    notes = models.TextField(_("notes"), blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    tags = TaggableManager(through=TaggedCustomer, blank=True, verbose_name=_("tags"))
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
            # The listing's default order: its first page and a full export read the index
            # instead of sorting every customer.
            models.Index(Lower("last_name"), Lower("first_name"), "id", name="clientdb_customer_name_order"),
        ]

    def __str__(self):
        return self.full_name or self.email or self.phone_display or _("Customer %(pk)s") % {"pk": self.pk}

    @property
    def full_name(self):
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def phone_display(self):
        return format_phone(self.phone, self.phone_raw)

    @property
    def phone_is_valid(self):
        return bool(self.phone) or not self.phone_raw

    @property
    def is_global(self):
        return self.home_branch_id is None

    def normalise_contact(self, phone_region=None):
        """Bring email and phone into their stored form; see :mod:`wagtail_clientdb.contact`."""
        from .settings import ClientDBSettings

        self.email = normalise_email(self.email)
        if phone_region is None:
            phone_region = ClientDBSettings.load().default_phone_region
        self.phone = parse_phone(self.phone_raw, phone_region).e164

    def save(self, *args, **kwargs):
        self.normalise_contact(kwargs.pop("phone_region", None))
        super().save(*args, **kwargs)


class ConsentEvent(models.Model):
    """Marketing consent given or withdrawn: the history behind ``Customer.marketing_consent``."""

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

    class Meta:
        verbose_name = _("local customer values")
        verbose_name_plural = _("local customer values")
        constraints = [
            models.UniqueConstraint(fields=["customer", "branch"], name="clientdb_one_override_per_branch")
        ]

    def __str__(self):
        return f"{self.customer_id} @ {self.branch_id}"
