"""The listing markup written from Python (:mod:`wagtail_clientdb.markup`) is what Django's and
Wagtail's templates render: the filters' choices byte for byte; every kind of button Wagtail
makes and the customer listing's title cells as each role sees them element for element
(whitespace between elements aside); a button with a template of its own is still rendered by it."""

import re

import pytest
from django import forms
from django.contrib.admin.utils import quote
from django.template import Context, Template
from django.template.loader import get_template
from django.test import RequestFactory
from django.test.html import parse_html
from django.urls import reverse
from wagtail import hooks
from wagtail.admin import widgets as wagtail_widgets
from wagtail.admin.widgets.button import Button, ButtonWithDropdown, HeaderButton, ListingButton

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb import archive, deletion, filters, markup, scope
from wagtail_clientdb.models import CustomerTag

LIST_URL = reverse("wagtailsnippets_wagtail_clientdb_customer:list")

#: The customer name cell as a template (what the listing rendered before it was written in Python).
NAME_CELL_TEMPLATE = """{% extends "wagtailadmin/tables/title_cell.html" %}
{% load i18n wagtailadmin_tags %}
{% block title %}
    {{ block.super }}
    {% if instance.home_branch_id is None %}{% status _("global") classname="w-status--primary clientdb-badge" %}{% endif %}
    {% if instance.archived_at %}{% trans "archived" as archived %}{% status archived classname="clientdb-badge" %}{% endif %}
    {% if instance.is_pending_deletion %}{% trans "pending deletion" as pending %}{% status pending classname="clientdb-badge" %}{% endif %}
{% endblock %}"""


def rendered_by_template(button):
    request = RequestFactory().get("/")
    return Template("{% load wagtailadmin_tags %}{% component button %}").render(Context({"button": button, "request": request}))


def same_html(first, second):
    return parse_html(str(first)) == parse_html(str(second))


class OwnTemplateButton(Button):
    template_name = "wagtailadmin/shared/icon.html"

    def get_context_data(self, parent_context):
        return {"name": "warning", "classname": "own-template"}


BUTTONS = {
    "link with an icon": Button("Edit", url="/edit/1/?next=/a&b", icon_name="edit", priority=10),
    "link without an icon": Button("History", url="/history/1/"),
    "no link: a button element": Button("Copy", icon_name="copy", attrs={"data-action": "copy"}),
    "attributes and a label to escape": Button(
        "<Delete> 'O'Brien'", url="/delete/1/", icon_name="bin", attrs={"aria-label": "Delete 'O'Brien' & co", "disabled": True}
    ),
    "a listing button": ListingButton("Inspect", url="/inspect/1/", icon_name="info-circle", classname="extra"),
    "a header button": HeaderButton("Add", url="/add/", icon_name="plus", icon_only=True),
}


@pytest.mark.parametrize("name", BUTTONS)
def test_a_button_is_written_as_its_template_renders_it(name):
    button = BUTTONS[name]
    assert same_html(markup.button_html(button, {}), rendered_by_template(button))


@pytest.mark.parametrize(
    "dropdown",
    [
        ButtonWithDropdown(buttons=list(BUTTONS.values()), icon_name="dots-horizontal", attrs={"aria-label": "More options for 'O'Brien'"}),
        ButtonWithDropdown("Export", buttons=[BUTTONS["link with an icon"]], classname="button-secondary"),
        ButtonWithDropdown(buttons=[OwnTemplateButton("Own", url="/own/"), BUTTONS["link without an icon"]]),
    ],
    ids=["icon only, every kind of button", "with a label, the default icon", "a button with its own template inside"],
)
def test_a_dropdown_is_written_as_its_templates_render_it(dropdown):
    assert same_html(markup.dropdown_html(dropdown, {}), rendered_by_template(dropdown))


def test_a_button_with_its_own_template_is_rendered_by_it():
    button = OwnTemplateButton("Own", url="/own/")
    written = markup.buttons_html([button, Button("Hidden", url="/hidden/")], {})
    assert "own-template" in written
    assert same_html(written, f"<li>{rendered_by_template(button)}</li><li>{rendered_by_template(Button('Hidden', url='/hidden/'))}</li>")


def test_buttons_not_shown_are_left_out():
    hidden = Button("Hidden", url="/hidden/")
    hidden.show = False
    assert markup.buttons_html([hidden], {}) == ""


def name_cells(html):
    return re.findall(r'<td class="clientdb-name title">.*?</td>', html, re.S)


@pytest.fixture
def listed_customers(branch_a, branch_b, manager, allow_branch_edits):
    customers = {
        "global": make_customer(first_name="Gloria", last_name="O'Global", shared_with_all_branches=True),
        "shared with a": make_customer(first_name="Gerd", last_name="<Specifica>", branches=[branch_a]),
        "local to a": make_customer(first_name="Lena", last_name="Locala", home_branch=branch_a),
        "archived": make_customer(first_name="Arne", last_name="Archived", home_branch=branch_a),
        "pending deletion": make_customer(first_name="Paula", last_name="Pending", shared_with_all_branches=True),
        "local to b": make_customer(first_name="Lars", last_name="Localb", home_branch=branch_b),
    }
    viewer = scope.Viewer(manager, True)
    archive.archive(viewer, [customers["archived"]])
    make_appointment(customers["pending deletion"], branch_a)  # blocks the deletion: it stays pending
    deletion.request_deletion(viewer, customers["pending deletion"])
    return customers


@pytest.mark.parametrize("role", ["manager", "staff_a"])
def test_the_customer_listing_title_cells_are_what_the_templates_render(role, request, login, listed_customers):
    client = login(request.getfixturevalue(role))
    response = client.get(LIST_URL, {"archived": "any"})
    assert response.status_code == 200
    table = response.context["table"]
    column = table.columns["name"]
    cells = name_cells(response.content.decode())
    assert len(cells) == len(table.data) >= 5
    reference = Template(NAME_CELL_TEMPLATE)
    for row, instance, cell in zip(table.rows, table.data, cells):
        parent_context = {"request": response.wsgi_request, "table": table, "row": row}
        expected = reference.render(Context(column.get_cell_context_data(instance, parent_context)))
        assert same_html(cell, expected), f"{instance}: {cell}\n\n{expected}"
    html = "".join(cells)
    assert "archived</span>" in html and "pending deletion</span>" in html and "global</span>" in html
    assert "&lt;Specifica&gt;" in html and "O&#x27;Global" in html


@pytest.mark.parametrize("role", ["manager", "staff_a"])
def test_the_customer_listing_checkbox_cells_are_what_the_template_renders(role, request, login, listed_customers):
    client = login(request.getfixturevalue(role))
    response = client.get(LIST_URL, {"archived": "any"})
    table = response.context["table"]
    column = table.columns["bulk_actions"]
    cells = re.findall(r'<td class="bulk-action-checkbox-cell">.*?</td>', response.content.decode(), re.S)
    assert len(cells) == len(table.data) >= 5
    reference = get_template(column.cell_template_name)
    for row, instance, cell in zip(table.rows, table.data, cells):
        context = column.get_cell_context_data(instance, {"request": response.wsgi_request, "table": table, "row": row})
        assert same_html(cell, reference.render(context)), cell
        assert f'data-object-id="{instance.pk}"' in cell and f'aria-describedby="snippet_{instance.pk}_title"' in cell


def test_the_customer_listing_row_urls_are_those_reverse_writes(login, manager, listed_customers):
    response = login(manager).get(LIST_URL, {"archived": "any"})
    view = response.context["view"]
    for instance in response.context["table"].data:
        for name, url in [
            (view.edit_url_name, view.get_edit_url(instance)),
            (view.inspect_url_name, view.get_inspect_url(instance)),
            (view.delete_url_name, view.get_delete_url(instance)),
        ]:
            assert url == reverse(name, args=(quote(instance.pk),))


def test_a_listing_button_added_by_a_hook_is_rendered_by_its_template(login, manager, listed_customers):
    def own_button(snippet, user, next_url=None):
        return [OwnTemplateButton("Own", url=f"/own/{snippet.pk}/")]

    with hooks.register_temporarily("register_snippet_listing_buttons", own_button):
        html = login(manager).get(LIST_URL).content.decode()
    assert all("own-template" in cell for cell in name_cells(html))


def rendered_by_templates(widget, name, value, attrs=None):
    """The widget as Django renders it: through its templates."""
    return forms.Widget.render(widget, name, value, attrs)


CHOICES = [("", "All"), ("a", "Anna & <Bea>"), ("o'b", "O'Brien"), (3, "Three")]
GROUPED = [("Near", [("n1", "Nord"), ("n2", "Nordost")]), ("Far", [("s1", "Süd")]), ("x", "Elsewhere")]


@pytest.mark.parametrize("widget_class", list(filters.WRITTEN_WIDGETS))
@pytest.mark.parametrize(
    "choices, value, attrs",
    [
        (CHOICES, "a", {"id": "id_pick", "class": "pick"}),
        (CHOICES, ["o'b", 3], {"id": "id_pick", "data-x": True, "disabled": False}),
        (GROUPED, "n2", {}),
        (CHOICES, None, {"id": "id_pick"}),
    ],
    ids=["one chosen, id and class", "several chosen, odd attributes", "grouped choices, no id", "nothing chosen"],
)
def test_a_filters_choices_are_written_as_djangos_templates_render_them(widget_class, choices, value, attrs):
    written_class = filters.WRITTEN_WIDGETS[widget_class]
    if widget_class is wagtail_widgets.BooleanRadioSelect:
        original, written = widget_class(), written_class()  # its own three choices, one chosen at most
        value = "true" if isinstance(value, list) else value
    else:
        original, written = widget_class(choices=choices), written_class(choices=choices)
    assert type(written).__name__ == widget_class.__name__  # Wagtail names the field's CSS class after it
    assert written.render("pick", value, attrs) == rendered_by_templates(original, "pick", value, attrs)


@pytest.mark.parametrize("role", ["manager", "staff_a"])
def test_the_customer_listing_filters_are_what_the_templates_render(role, request, login, listed_customers):
    tag = CustomerTag.objects.create(name="Stammkunde & <VIP>")
    listed_customers["global"].tags.add(tag)
    response = login(request.getfixturevalue(role)).get(LIST_URL, {"tags": tag.pk, "marketing_consent": "true", "archived": "any"})
    assert response.status_code == 200
    form = response.context["filters"].form
    written = [field for field in form if isinstance(field.field.widget, filters.WrittenWidgetMixin)]
    assert {field.name for field in written} >= {"tags", "groups", "marketing_consent", "source", "archived", "upcoming_appointment"}
    for field in written:
        widget = field.field.widget
        attrs = field.build_widget_attrs({"id": field.auto_id})
        value = field.value()
        assert widget.render(field.html_name, value, attrs) == rendered_by_templates(widget, field.html_name, value, attrs), field.name
    html = response.content.decode()
    assert "Stammkunde &amp; &lt;VIP&gt;" in html
