"""The django-import-export resource that matches imported rows to customers and saves them.

django-import-export drives each chunk of rows (row results, invalid-row reporting, bulk
saving); this resource supplies what is ours:

* matching by the identity rule of :mod:`wagtail_clientdb.matching` (an export's record ID,
  external ID, then email, then phone, among the customers the importing user may see; a
  record ID whose customer shares nothing else with the row is refused), prefetched once per
  chunk (:class:`MatchingLoader`); a confirmed import holds the import lock
  (:func:`wagtail_clientdb.matching.lock_for_import`), so that a booking or the desk creating
  one of its new people meanwhile waits for it and then finds them;
* the rows' values, checked beforehand with the domain rules (:mod:`.rows`, by
  :mod:`.checking`), applied with the scope rules of :mod:`wagtail_clientdb.scope`: a
  branch creates local customers and changes global ones only as local values where the
  company allows it; nothing narrows "all branches"; a value repeating an earlier row's
  external ID, email or phone is refused (:mod:`.duplicates`);
* tags, groups, branches, consent history and local values written in bulk after each
  batch of customers.
"""

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from import_export import resources
from import_export.instance_loaders import BaseInstanceLoader

from .. import audit, bulk, matching, overrides, removals, scope, tags, times
from ..models import (
    Branch,
    ConsentChannel,
    ConsentEvent,
    Customer,
    CustomerGroup,
    CustomerOverride,
    CustomerSource,
    CustomerTag,
    TaggedCustomer,
)
from . import columns
from .batches import note
from .duplicates import SeenValues, same_as_line, same_as_record
from .rows import RowContext

#: The dataset django-import-export walks has one column: each row's line in the file.
#: The cells were checked before (:func:`.rows.check_row`); ``resource.checked`` holds them.
LINE = "__line__"


class ImportSettings:
    """Who imports, and the choices made on the import form.

    ``previewed_at``: when the preview the user confirmed began; a row that would change a
    customer (or the branch's local values) changed after it is refused, because the user
    confirmed what the preview showed, not what is there now. ``report_duplicates``: new rows
    are checked for customers they may be (:func:`wagtail_clientdb.matching.possible_duplicates`),
    for the preview.
    """

    def __init__(
        self,
        viewer,
        *,
        all_branches=False,
        share_branches=(),
        phone_region="DE",
        previewed_at=None,
        source=CustomerSource.IMPORT,
        consent_channel=ConsentChannel.IMPORT,
        report_duplicates=False,
    ):
        self.viewer = viewer
        self.report_duplicates = report_duplicates
        #: What new customers say they came from, and the channel of consents given or withdrawn.
        self.source, self.consent_channel = source, consent_channel
        self.all_branches = all_branches
        self.share_branches = list(share_branches)
        self.phone_region = phone_region
        self.previewed_at = previewed_at
        self.may_edit_global = scope.branches_may_edit_global_customers()
        #: Keeps what a confirmed import writes, for a rollback (:class:`.batches.BatchRecorder`).
        self.recorder = None
        #: The source document of consents given without an import file (the API's bulk import).
        self.consent_reference = ""


class MatchingLoader(BaseInstanceLoader):
    """Finds the customer a row means by the identity rule of :mod:`wagtail_clientdb.matching`
    (external ID, then email, then phone, among the customers the importing user may see),
    for a whole chunk at once: candidates loaded (and locked, during a real import) in one
    query, with their tags, groups, branches and the branch's local values."""

    def __init__(self, resource, dataset=None):
        super().__init__(resource, dataset)
        self.rows = {line: resource.checked[line].keys for line in dataset[LINE]}
        self.candidates = matching.candidates(
            resource.get_queryset(),
            self.rows.values(),
            lock=resource.lock_rows,
            # The import sets updated_at (read to compare with the preview) and leaves created_at.
            prepare=lambda queryset: queryset.select_related("home_branch").defer("created_at"),
            sets_external_ids=scope.gives_external_ids(resource.settings.viewer),
            branch=resource.settings.viewer.branch,
        )
        attach_relations(self.candidates.customers, resource.settings.viewer.branch)

    def get_instance(self, row):
        # A refusal names the key ("email", …), which is also the column's target.
        return self.candidates.match(self.rows[row[LINE]])


def attach_relations(customers, branch):
    """Tag names, group and branch ids, and the branch's local values, in a query or two each."""
    by_pk = {customer.pk: customer for customer in customers}
    for customer in customers:
        customer.tag_names, customer.group_ids, customer.branch_ids = [], set(), set()
        customer.branch_override = None
    if not by_pk:
        return
    pks = list(by_pk)
    tag_links = bulk.rows_with_values(TaggedCustomer, "content_object", pks, ("content_object", "tag"))
    tag_names = dict(CustomerTag.all_tags.filter(pk__in={tag_id for _pk, tag_id in tag_links}).values_list("pk", "name"))
    for pk, tag_id in tag_links:
        by_pk[pk].tag_names.append(tag_names[tag_id])
    for pk, group_id in bulk.rows_with_values(Customer.groups.through, "customer", pks, ("customer", "customergroup")):
        by_pk[pk].group_ids.add(group_id)
    for pk, branch_id in bulk.rows_with_values(Customer.branches.through, "customer", pks, ("customer", "branch")):
        by_pk[pk].branch_ids.add(branch_id)
    if branch is not None:
        for override in CustomerOverride.objects.filter(bulk.any_of("customer_id", pks), branch=branch):
            by_pk[override.customer_id].branch_override = override


class CustomerImportResource(resources.ModelResource):
    class Meta:
        model = Customer
        fields = ()
        import_id_fields = ()
        instance_loader_class = MatchingLoader
        use_bulk = True
        batch_size = 1000
        skip_diff = True
        skip_html_diff = True
        clean_model_instances = False
        report_skipped = True

    def __init__(self, settings, *, lock_rows=False, remember_instances=False):
        super().__init__()
        self.settings = settings
        self.lock_rows = lock_rows
        #: line → the customer of the row, for callers that report per record (the API); they
        #: take a chunk's customers once it is written.
        self.instance_by_line = {} if remember_instances else None
        viewer = settings.viewer
        self.row_context = RowContext(
            settings.phone_region,
            CustomerGroup.objects.all(),
            Branch.objects.all(),
            columns.attribute_targets(),
            from_a_file=settings.source != CustomerSource.API,
        )
        #: line → CheckedRow of the chunk being imported; set before each chunk.
        self.checked = {}
        self.seen = SeenValues(same_as_record if settings.source == CustomerSource.API else same_as_line)
        self.visible = scope.visible_customers(viewer)
        self.now = timezone.now()
        self.consent_user = viewer.user if getattr(viewer.user, "is_authenticated", False) else None
        self.unreadable_phones = 0
        #: line → the values of each new row of the chunk, and then the customers they may be.
        self.new_people = {}
        self.possible_duplicates = {}
        #: Ids of the customers this import wrote so far (kept while it names possible duplicates).
        self.created_here = set()
        #: line → the name of a customer the row renames (its result says who it was).
        self.renamed = {}
        self.new_customer = bulk.instance_maker(Customer, source=settings.source)

    def get_queryset(self):
        return self.visible

    def before_import(self, dataset, **kwargs):
        if self.lock_rows:
            # Before the chunk's customers are looked up: who creates a person meanwhile waits.
            matching.lock_for_import()
        self.seen.start_chunk(self.checked.values())

    def after_import(self, dataset, result, **kwargs):
        self.seen.end_chunk()
        if self.new_people:
            # The chunk's new rows, looked up together: a few index lookups for all of them.
            # Compared with the customers there before the import, as a preview (which writes
            # nothing) compares them: not with those this import created, whichever chunk did.
            lines = list(self.new_people)
            found = matching.possible_duplicates(
                self.settings.viewer,
                [matching.Person.from_values(self.new_people[line]) for line in lines],
                limit=3,
                exclude=self.created_here,
                # The rows matched nobody by the identity rule (MatchingLoader), or they would not be new.
                unmatched=True,
            )
            self.possible_duplicates = {line: matches for line, matches in zip(lines, found) if matches}
            self.new_people = {}
        if self.settings.recorder is not None:
            self.settings.recorder.flush()

    def take_possible_duplicates(self):
        """line → :class:`~wagtail_clientdb.matching.PossibleDuplicate` list of the chunk's new rows."""
        found, self.possible_duplicates = self.possible_duplicates, {}
        return found

    def import_row(self, row, instance_loader, **kwargs):
        result = super().import_row(row, instance_loader, **kwargs)
        before = self.renamed.pop(row[LINE], None)
        if before and result.object_repr:
            # The preview's examples say whom a row matched: "Jürgen Weiß → Grete Nullmann".
            result.object_repr = f"{before} → {result.object_repr}"
        return result

    def init_instance(self, row=None):
        return self.new_customer()

    def get_bulk_update_fields(self):
        """Only the columns some row of the batch changes."""
        changed = set().union(*(instance._import.fields for instance in self.update_instances))
        return sorted(changed) + ["updated_at", "version"]

    # --- One row -------------------------------------------------------------------------------------

    def import_instance(self, instance, row, **kwargs):
        if self.instance_by_line is not None:
            self.instance_by_line[row[LINE]] = instance
        checked = self.checked[row[LINE]]
        if checked.errors:
            raise ValidationError(checked.errors)
        values = checked.values
        repeated = self.seen.repeated(row[LINE], values)
        if repeated:
            raise ValidationError(repeated)
        instance._import = plan = ImportPlan()
        if values.phone_unreadable:
            self.unreadable_phones += 1
        if instance.pk is None:
            self._new_customer(instance, values, plan)
            if self.settings.report_duplicates:
                self.new_people[row[LINE]] = values.fields
            return
        if values.record_id and not matching.is_same_record(instance, values.fields, instance.branch_override):
            raise ValidationError(
                {
                    columns.RECORD_ID: [
                        ValidationError(
                            _(
                                "Record ID %(record_id)s is %(customer)s, and nothing else in the row is theirs: is the "
                                "file from another database? Empty the record ID to match the row by its email or phone."
                            ),
                            params={"record_id": values.record_id, "customer": str(instance)},
                        )
                    ]
                }
            )
        mode = scope.edit_mode(self.settings.viewer, instance, may_edit_global=self.settings.may_edit_global)
        if mode == scope.EditMode.OVERRIDE:
            self._local_values(instance, values, plan)
        elif mode == scope.EditMode.DIRECT:
            before = str(instance)
            self._update(instance, values, plan)
            if plan.changed and str(instance) != before:
                self.renamed[row[LINE]] = before
        else:
            self._update(instance, values, plan)
            if plan.changed:
                raise ValidationError(
                    {"__all__": [_("This customer is shared by the head office and is read-only in your branch.")]}
                )
        if plan.changed:
            self._check_unchanged_since_preview(instance)

    def _check_unchanged_since_preview(self, instance):
        previewed_at = self.settings.previewed_at
        if previewed_at is None:
            return
        override = instance.branch_override
        changed_at = max(instance.updated_at, override.updated_at if override else instance.updated_at)
        if changed_at > previewed_at:
            raise ValidationError(
                {
                    "__all__": [
                        ValidationError(
                            _(
                                "This customer was changed at %(time)s, after the preview. Check the file again "
                                "(upload it anew) so that nothing changed meanwhile is overwritten."
                            ),
                            params={"time": times.moment(changed_at, self.settings.viewer)},
                        )
                    ]
                }
            )

    def _new_customer(self, instance, values, plan):
        viewer = self.settings.viewer
        for name, value in values.fields.items():
            setattr(instance, name, value)
        instance.attributes = {k: v for k, v in values.attributes.items() if v is not None}
        scope.apply_new_customer_scope(viewer, instance)
        if viewer.is_manager:
            sharing = values.branches if values.branches is not None else ("all" if self.settings.all_branches else self.settings.share_branches)
            if values.branches is None and sharing == [] and self.settings.previewed_at is not None:
                # The preview had no new customers, so no sharing was chosen: this row matched
                # a customer then who is gone now.
                raise ValidationError(
                    {
                        "__all__": [
                            _(
                                "This row would now create a new customer, which the preview did not show. "
                                "Check the file again (upload it anew) to choose who new customers are shared with."
                            )
                        ]
                    }
                )
            instance.shared_with_all_branches = sharing == "all"
            plan.branches = [] if sharing == "all" else list(sharing)
        if values.consent:
            instance.marketing_consent = True
            plan.consent = True
        plan.tags = values.tags
        plan.groups = values.groups
        plan.changed = True

    def _update(self, instance, values, plan):
        for name, value in same_number_unchanged(values.fields, instance.phone).items():
            before = getattr(instance, name)
            if before != value:
                setattr(instance, name, value)
                plan.change(name)
                note(instance, name, before, value)
        given = {k: v for k, v in values.attributes.items() if v is not None}
        old_attributes = instance.attributes
        new_attributes = {**old_attributes, **given}
        if new_attributes != old_attributes:
            instance.attributes = new_attributes
            plan.change("attributes")
            changed_keys = [key for key, value in given.items() if old_attributes.get(key) != value]
            note(instance, "attributes", {k: old_attributes.get(k) for k in changed_keys}, {k: given[k] for k in changed_keys})
        if values.consent is not None and values.consent != instance.marketing_consent:
            note(instance, "marketing_consent", instance.marketing_consent, values.consent)
            instance.marketing_consent = values.consent
            plan.consent = values.consent
            plan.change("marketing_consent")
        if values.tags is not None and not tags.same(values.tags, instance.tag_names):
            note(instance, "tags", sorted(instance.tag_names), sorted(values.tags))
            plan.tags = values.tags
            plan.changed = True
        if values.groups is not None and (group_ids := {g.pk for g in values.groups}) != instance.group_ids:
            note(instance, "groups", sorted(instance.group_ids), sorted(group_ids))
            plan.groups = values.groups
            plan.changed = True
        if values.branches is not None:
            self._sharing(instance, values.branches, plan)

    def _sharing(self, instance, wanted, plan):
        if not self.settings.viewer.is_manager:
            return
        if instance.home_branch_id:
            if wanted != "all" and {b.pk for b in wanted} == {instance.home_branch_id}:
                return
            if wanted != "all":
                wanted = list({*wanted, instance.home_branch})
            note(instance, "home_branch", instance.home_branch_id, None)
            instance.home_branch = None
            plan.change("home_branch")
        elif instance.shared_with_all_branches:
            if wanted != "all":
                raise ValidationError({columns.BRANCHES: [str(scope.ALL_BRANCHES_IS_FINAL)]})
            return
        elif wanted != "all" and {b.pk for b in wanted} == instance.branch_ids:
            return
        if instance.shared_with_all_branches != (wanted == "all"):
            note(instance, "shared_with_all_branches", instance.shared_with_all_branches, wanted == "all")
            instance.shared_with_all_branches = wanted == "all"
            plan.change("shared_with_all_branches")
        plan.branches = [] if wanted == "all" else list(wanted)
        note(instance, "branches", sorted(instance.branch_ids), sorted({b.pk for b in plan.branches}))
        plan.changed = True

    def _local_values(self, instance, values, plan):
        """A branch changing a global customer: only what may be local, kept for the branch."""
        refused = [
            target
            for target, given in (
                (columns.TAGS, values.tags is not None and not tags.same(values.tags, instance.tag_names)),
                (columns.GROUPS, values.groups is not None and {g.pk for g in values.groups} != instance.group_ids),
                (columns.CONSENT, values.consent is not None and values.consent != instance.marketing_consent),
                (columns.EXTERNAL_ID, values.fields.get("external_id", instance.external_id) != instance.external_id),
            )
            if given
        ]
        if refused:
            raise ValidationError(
                {target: [_("Only the head office can change this for a shared customer.")] for target in refused}
            )
        effective = overrides.EffectiveCustomer(instance, instance.branch_override)
        given = same_number_unchanged(values.fields, effective.value("phone"))
        local = {name: value for name, value in given.items() if name in overrides.OVERRIDABLE_FIELDS}
        changed = {name: value for name, value in local.items() if effective.value(name) != value}
        changed_attributes = {k: v for k, v in values.attributes.items() if v is not None and effective.attributes.get(k) != v}
        if changed or changed_attributes:
            plan.local_values = (changed, changed_attributes)
            plan.changed = True
            # What the branch held before (``None``: no local value); the values after are
            # read from the saved local values (:func:`.batches.local_after`).
            override = instance.branch_override
            for name in (*changed, *(("phone",) if "phone_raw" in changed else ())):
                note(instance, name, getattr(override, name) if override else None, None)
            if changed_attributes:
                held = override.attributes if override else {}
                note(instance, "attributes", {key: held.get(key) for key in changed_attributes}, None)

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors:
            return False
        return not instance._import.changed

    def before_save_instance(self, instance, row, **kwargs):
        instance.updated_at = self.now
        if instance.pk is not None:
            # The rows are locked for the import: the next version is ours to write.
            instance.version += 1

    # --- Batches ------------------------------------------------------------------------------------------

    def save_instance(self, instance, is_create, row, **kwargs):
        if instance._import.local_values:
            # The record stays as it is; only the branch's local values change.
            self.local_value_instances.append(instance)
            return
        super().save_instance(instance, is_create, row, **kwargs)

    @property
    def local_value_instances(self):
        return self.__dict__.setdefault("_local_value_instances", [])

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        written = list(self.create_instances) if (using_transactions or not dry_run) else []
        self.create_instances.clear()
        if written:
            try:
                bulk.insert(Customer, written)
            except Exception as error:
                self.handle_import_error(result, error, raise_errors)
            if self.settings.report_duplicates:
                self.created_here.update(customer.pk for customer in written)
        self._save_related(written, result, raise_errors, new=True)
        if written and self.settings.recorder is not None:
            audit.imported(written, new=True, job=self.settings.recorder.job, branch=self.settings.viewer.branch)
            self.settings.recorder.created(written)

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        written = list(self.update_instances) if (using_transactions or not dry_run) else []
        if written:
            try:
                bulk.bulk_update(Customer, written, self.get_bulk_update_fields())
            except Exception as error:
                self.handle_import_error(result, error, raise_errors)
        self.update_instances.clear()
        written += self.local_value_instances if (using_transactions or not dry_run) else []
        self.local_value_instances.clear()
        self._save_related(written, result, raise_errors, new=False)
        if written and self.settings.recorder is not None:
            audit.imported(written, new=False, job=self.settings.recorder.job, branch=self.settings.viewer.branch)
            self.settings.recorder.updated(written)

    def _save_related(self, instances, result, raise_errors, *, new):
        if not instances:
            return
        try:
            save_related(instances, self.settings, self.consent_user, new=new)
        except Exception as error:
            self.handle_import_error(result, error, raise_errors)


def same_number_unchanged(fields, current_phone):
    """The same phone number written another way (``0170 1234567`` for ``+491701234567``)
    is no change: the number as first typed stays."""
    if fields.get("phone") and fields["phone"] == current_phone:
        return {name: value for name, value in fields.items() if name not in ("phone", "phone_raw")}
    return fields


class ImportPlan:
    """What saving one row does besides the customer's own columns."""

    def __init__(self):
        self.changed = False
        #: Columns of the customer's own row that change.
        self.fields = set()
        self.tags = None
        self.groups = None
        self.branches = None
        self.consent = None
        self.local_values = None

    def change(self, field_name):
        self.fields.add(field_name)
        self.changed = True


def save_related(instances, settings, user, *, new):
    """Tags, groups, branches, consent events and local values of a batch, in bulk.

    ``new``: the customers were just created, so they have no links to replace yet.
    """
    plans = [(customer, customer._import) for customer in instances]
    # Links are replaced only where a customer had some (loaded by attach_relations).
    replace_links(
        Customer.groups.through, "customer", "customergroup",
        [(c.pk, [g.pk for g in p.groups], not new and c.group_ids) for c, p in plans if p.groups is not None],
    )
    replace_links(
        Customer.branches.through, "customer", "branch",
        [(c.pk, [b.pk for b in p.branches], not new and c.branch_ids) for c, p in plans if p.branches is not None],
    )
    if not new:
        # A customer shared with fewer specific branches than before (a local customer's own
        # branch is among those given; "all branches" is never narrowed).
        reshared = [(c, p) for c, p in plans if p.branches is not None]
        removals.record_unshared(
            {c.pk: (False, set(c.branch_ids)) for c, _p in reshared},
            {c.pk: (c.shared_with_all_branches, {b.pk for b in p.branches}) for c, p in reshared},
        )
    tagged = [(c, p.tags) for c, p in plans if p.tags is not None]
    if tagged:
        # The batch's tags in one query, by the tag rule: "Regular" on one row and "regular"
        # on another are one tag, the existing one if there is one.
        found = tags.resolve(name for _customer, names in tagged for name in names)
        replace_links(
            TaggedCustomer, "content_object", "tag",
            # The rows' names are clean already (rows.clean_tags): casefolded, they are folded.
            [(c.pk, [found[name.casefold()].pk for name in names], not new and c.tag_names) for c, names in tagged],
        )
    job = settings.recorder.job if settings.recorder is not None else None
    events = ConsentEvent.objects.bulk_create(
        ConsentEvent(
            customer=c,
            given=p.consent,
            channel=settings.consent_channel,
            recorded_by=user,
            import_job=job,
            reference="" if job is not None else settings.consent_reference,
        )
        for c, p in plans
        if p.consent is not None
    )
    audit.consents_imported(events, branch=settings.viewer.branch)
    for customer, plan in plans:
        if plan.local_values:
            fields, attribute_values = plan.local_values
            customer._import_override = overrides.save_local_values(
                customer, settings.viewer.branch, fields, attributes=attribute_values, user=user
            )


def replace_links(model, owner, target, rows):
    """``rows``: (customer pk, target pks, whether the customer has links to remove first)."""
    if not rows:
        return
    replaced = [pk for pk, _targets, has_links in rows if has_links]
    if replaced:
        model.objects.filter(bulk.any_of(f"{owner}_id", replaced)).delete()
    bulk.insert_links(model, owner, target, [(pk, target_pk) for pk, targets, _has in rows for target_pk in dict.fromkeys(targets)])
