"""No lost updates: a save based on data someone else changed meanwhile is refused, naming
what changed (the edit form, branch-local values, bulk actions, imports)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.conftest import customer_url, make_appointment, make_customer
from tests.import_files import refused_rows, csv_bytes
from wagtail_clientdb import overrides, scope, versions
from wagtail_clientdb.models import Customer, CustomerOverride, ImportJob


@pytest.fixture
def anna(db):
    return make_customer(
        first_name="Anna", last_name="Schmidt", email="anna@example.com", phone_raw="+49 170 1111111", shared_with_all_branches=True
    )


def edit_page(client, customer):
    """The edit form's data as a browser would send it back unchanged."""
    form = client.get(customer_url("edit", customer.pk)).context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or value is False:
            continue
        if isinstance(value, (list, tuple)):
            data[name] = [str(getattr(v, "pk", v)) for v in value]
        elif name == "tags":
            data[name] = ", ".join(tag.name for tag in value) if not isinstance(value, str) else value
        else:
            data[name] = "on" if value is True else str(value)
    return data


def test_second_save_of_the_same_customer_is_refused_with_what_changed(client, django_user_model, manager_group, anna):
    first, second = [django_user_model.objects.create_user(name, password="x") for name in ("first", "second")]
    for user in (first, second):
        user.groups.add(manager_group)
    client.force_login(first)
    first_data = edit_page(client, anna)
    client.force_login(second)
    second_data = edit_page(client, anna)

    client.force_login(first)
    assert client.post(customer_url("edit", anna.pk), {**first_data, "email": "anna.new@example.com"}).status_code == 302

    client.force_login(second)
    response = client.post(customer_url("edit", anna.pk), {**second_data, "phone_raw": "0170 2222222"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Someone else saved this customer" in html and "Changed meanwhile: Email" in html
    assert "Changed meanwhile to: anna.new@example.com" in html
    anna.refresh_from_db()
    assert (anna.email, anna.phone) == ("anna.new@example.com", "+491701111111")

    # The form now stands on what is stored: saving again keeps what the form shows.
    form = response.context["form"]
    resend = {**second_data, "phone_raw": "0170 2222222", "email": "anna.new@example.com", "edit_base": form["edit_base"].value()}
    assert client.post(customer_url("edit", anna.pk), resend).status_code == 302
    anna.refresh_from_db()
    assert (anna.email, anna.phone) == ("anna.new@example.com", "+491702222222")


def test_a_change_of_what_the_form_does_not_show_overwrites_nothing_and_passes(
    login, manager, staff_a, anna, allow_branch_edits, branch_a
):
    client = login(staff_a)
    data = edit_page(client, anna)  # the branch form shows the local-value fields only
    anna.tags.add("vip")
    versions.touch([anna.pk])
    assert client.post(customer_url("edit", anna.pk), {**data, "notes": "Mornings only"}).status_code == 302
    assert CustomerOverride.objects.get(customer=anna, branch=branch_a).notes == "Mornings only"


def test_branch_local_values_are_protected_too(login, make_user, staff_group, staff_a, anna, allow_branch_edits, branch_a):
    colleague = make_user("colleague", groups=[staff_group], branches=[branch_a])
    client = login(staff_a)
    mine = edit_page(client, anna)
    client = login(colleague)
    theirs = edit_page(client, anna)
    assert client.post(customer_url("edit", anna.pk), {**theirs, "notes": "Theirs"}).status_code == 302

    client = login(staff_a)
    response = client.post(customer_url("edit", anna.pk), {**mine, "phone_raw": "0170 3333333"})
    assert response.status_code == 200
    assert "Changed meanwhile: Notes" in response.content.decode()
    override = CustomerOverride.objects.get(customer=anna, branch=branch_a)
    assert (override.notes, override.phone) == ("Theirs", None)


def test_a_central_change_refuses_a_branch_save_that_shows_the_changed_field(login, manager, staff_a, anna, allow_branch_edits):
    client = login(staff_a)
    data = edit_page(client, anna)
    central = Customer.objects.get(pk=anna.pk)
    central.email = "central@example.com"
    central.save()
    response = login(staff_a).post(customer_url("edit", anna.pk), {**data, "phone_raw": "0170 4444444"})
    assert response.status_code == 200 and "Changed meanwhile: Email" in response.content.decode()
    # Had it been saved, the old email would have become a local value of A, hiding the central change.
    assert not CustomerOverride.objects.exists()


def test_the_check_is_repeated_inside_the_saving_transaction(manager, anna, branch_a):
    viewer = scope.Viewer(manager, True)
    CustomerForm = Customer.snippet_viewset.get_edit_handler().get_form_class()
    unbound = CustomerForm(instance=Customer.objects.get(pk=anna.pk), viewer=viewer, for_user=manager)
    data = {name: unbound[name].value() for name in unbound.fields}
    data.update(first_name="Anne", marketing_consent="", groups=[], share_branches=[], tags="", birthday="", sharing="all")
    form = CustomerForm(data, instance=Customer.objects.get(pk=anna.pk), viewer=viewer, for_user=manager)
    assert form.is_valid(), form.errors
    # Someone saves between the form's validation and its save.
    other = Customer.objects.get(pk=anna.pk)
    other.last_name = "Schmitt"
    other.save()
    with pytest.raises(versions.StaleEdit):
        form.save()
    anna.refresh_from_db()
    assert (anna.first_name, anna.last_name) == ("Anna", "Schmitt")


def bound_edit_form(user, viewer, customer, **changes):
    """The edit form of ``customer`` sent back with ``changes``, its instance read now (as the
    edit view reads it when a request begins)."""
    CustomerForm = Customer.snippet_viewset.get_edit_handler().get_form_class()
    unbound = CustomerForm(instance=Customer.objects.get(pk=customer.pk), viewer=viewer, for_user=user)
    data = {}
    for name in unbound.fields:
        value = unbound[name].value()
        if value is None or value is False:
            continue
        if isinstance(value, (list, tuple)):
            data[name] = [str(getattr(v, "pk", v)) for v in value]
        else:
            data[name] = "on" if value is True else str(value)
    return CustomerForm({**data, **changes}, instance=Customer.objects.get(pk=customer.pk), viewer=viewer, for_user=user)


def test_a_booking_counted_while_the_form_is_saved_keeps_its_count(manager, anna, branch_a):
    # Found while writing the load test's checks (docs/performance.md): the save wrote back
    # every column as the request had read it, among them the booking count of a booking
    # made meanwhile, which the form does not show.
    form = bound_edit_form(manager, scope.Viewer(manager, True), anna, notes="Mornings only")
    assert form.is_valid(), form.errors
    make_appointment(anna, branch_a)  # counted: bookings_total 1
    form.save()
    anna.refresh_from_db()
    assert (anna.notes, anna.bookings_total) == ("Mornings only", 1)


def test_columns_the_form_does_not_show_are_saved_as_they_are_under_the_lock(manager, anna):
    anna.attributes = {"hair_type": "curly"}
    anna.save()
    form = bound_edit_form(manager, scope.Viewer(manager, True), anna, first_name="Anne")
    assert form.is_valid(), form.errors
    # Changed meanwhile where this form has no field: an attribute without an active
    # definition, the source.
    Customer.objects.filter(pk=anna.pk).update(attributes={"hair_type": "curly", "old_key": "kept"}, source="api")
    form.save()
    anna.refresh_from_db()
    assert (anna.first_name, anna.source, anna.attributes) == ("Anne", "api", {"hair_type": "curly", "old_key": "kept"})


def test_a_customer_shared_while_its_branch_saves_it_stays_shared(staff_a, branch_a):
    lena = make_customer(first_name="Lena", last_name="Locala", home_branch=branch_a)
    form = bound_edit_form(staff_a, scope.Viewer(staff_a, False, (branch_a,)), lena, notes="Local note")
    assert form.is_valid(), form.errors
    scope.set_sharing(Customer.objects.get(pk=lena.pk), all_branches=True)  # the head office, meanwhile
    # The branch's form would write its changes on the record of a customer now shared (and
    # made it local again); it is refused like any save based on what changed meanwhile.
    with pytest.raises(versions.StaleEdit) as refusal:
        form.save()
    assert "Changed meanwhile: Shared with branches" in refusal.value.messages[0]
    lena.refresh_from_db()
    assert (lena.home_branch_id, lena.shared_with_all_branches, lena.notes) == (None, True, "")


def test_a_form_without_its_base_is_refused(login, manager, anna):
    data = edit_page(login(manager), anna)
    for base in ("", "forged"):
        response = login(manager).post(customer_url("edit", anna.pk), {**data, "edit_base": base, "first_name": "Anne"})
        assert response.status_code == 200 and "out of date" in response.content.decode()
    anna.refresh_from_db()
    assert anna.first_name == "Anna"


def test_every_save_raises_the_version_even_from_stale_instances(anna):
    first, second = Customer.objects.get(pk=anna.pk), Customer.objects.get(pk=anna.pk)
    first.notes = "one"
    first.save()
    second.notes = "two"
    second.save()
    assert (first.version, second.version) == (2, 3)


def test_local_values_keep_their_own_version(anna, branch_a):
    overrides.save_local_values(anna, branch_a, {"notes": "one"})
    first = CustomerOverride.objects.get().version
    overrides.save_local_values(anna, branch_a, {"notes": "two"})
    assert CustomerOverride.objects.get().version > first
    assert Customer.objects.get(pk=anna.pk).version == 1  # the company record is untouched


def test_bulk_action_leaves_customers_changed_after_the_page_was_opened(login, manager, branch_a):
    customers = [make_customer(first_name=name, branches=[branch_a]) for name in ("Ada", "Bea", "Cem")]
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "add_tags")) + "?" + "&".join(
        f"id={c.pk}" for c in customers
    ) + "&next=" + customer_url("list")
    client = login(manager)
    opened_at = client.get(url).context["form"]["opened_at"].value()
    changed = Customer.objects.get(pk=customers[1].pk)
    changed.first_name = "Beatrix"
    changed.save()
    response = client.post(url, {"opened_at": opened_at, "tags": "vip"}, follow=True)
    assert "1 customer was added or changed after you opened this page and was left as it is: Beatrix" in response.content.decode()
    tagged = set(Customer.objects.filter(tags__name="vip").values_list("first_name", flat=True))
    assert tagged == {"Ada", "Cem"}
    # The bulk change is a change: an edit form opened before it is stale now.
    assert all(Customer.objects.get(pk=c.pk).version == 2 for c in (customers[0], customers[2]))


def test_import_refuses_rows_of_customers_changed_after_the_preview(login, manager, anna):
    client = login(manager)
    rows = [["Email", "Notes"], ["anna@example.com", "From the file"], ["new@example.com", "New person"]]
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("list.csv", csv_bytes(rows))})
    job = ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    assert job.counts == {"new": 1, "updated": 1, "unchanged": 0, "invalid": 0}
    changed = Customer.objects.get(pk=anna.pk)
    changed.notes = "Typed at the desk meanwhile"
    changed.save()

    client.post(customer_url("import_job", job.pk), {"sharing": "all"})
    job.refresh_from_db()
    assert job.status == "refused"
    assert "changed at" in refused_rows(job)[0]["message"] and "after the preview" in refused_rows(job)[0]["message"]
    anna.refresh_from_db()
    assert anna.notes == "Typed at the desk meanwhile" and not Customer.objects.filter(email="new@example.com").exists()

    # After the refusal the valid rows can still be imported; the changed customer stays refused.
    client.post(customer_url("import_job", job.pk), {"sharing": "all"})
    job.refresh_from_db()
    assert job.status == "imported" and job.counts["invalid"] == 1
    assert Customer.objects.filter(email="new@example.com").exists()
    anna.refresh_from_db()
    assert anna.notes == "Typed at the desk meanwhile"
    # A fresh preview sees the change; importing it then is what the user confirmed.
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("list.csv", csv_bytes(rows))})
    job = ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    client.post(customer_url("import_job", job.pk), {"sharing": "all"})
    anna.refresh_from_db()
    assert anna.notes == "From the file"


@pytest.mark.parametrize(
    "language, message",
    [("de", "Jemand anderes hat diesen Kunden gespeichert"), ("fr", "Quelqu’un d’autre a enregistré ce client")],
)
def test_the_refusal_speaks_the_users_language(login, manager, anna, language, message):
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(manager)
    profile.preferred_language = language
    profile.save()
    client = login(manager)
    data = edit_page(client, anna)
    Customer.objects.filter(pk=anna.pk).update(email="other@example.com")
    versions.touch([anna.pk])
    response = client.post(customer_url("edit", anna.pk), {**data, "notes": "x"})
    assert message in response.content.decode()
