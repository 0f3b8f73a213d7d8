"""Wagtail's admin markup for the parts a listing repeats on every row, written from Python.

A customer listing page rendered Wagtail's templates twenty times over for its title cells —
the cell, the row's "More" dropdown, each button in it, each icon —: a quarter of the page's
processor time. These functions write the same elements with the same attributes (the tests
compare them with what the templates render); a button of another kind, with a template or
context of its own (a hook's), is still rendered by its template.
"""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from wagtail.admin.widgets.button import BaseButton, BaseDropdownMenuButton


def html_attrs(attrs):
    """The attributes as Django's ``attrs.html`` and Wagtail's ``shared/attrs.html`` write
    them: ``True`` bare, ``False`` left out."""
    return format_html_join(
        "", " {}{}", ((name, "" if value is True else format_html('="{}"', value)) for name, value in attrs.items() if value is not False)
    )


def classnames(*names):
    """Wagtail's ``{% classnames %}``: the names given, stripped, the empty ones left out."""
    return " ".join(name.strip() for name in names if name)


def icon_html(name, classname="icon"):
    return format_html('<svg class="icon icon-{} {}" aria-hidden="true"><use href="#icon-{}"></use></svg>', name, classname, name)


def status_html(label, classname=""):
    """A status tag (``{% status %}`` without a link)."""
    return format_html('<span class="{}">{}</span>', classnames("w-status", classname), label)


def _renders_as(button, kind):
    """Whether ``button`` renders exactly as ``kind`` does: same template, same context."""
    cls = type(button)
    return (
        button.template_name == kind.template_name
        and cls.get_context_data is kind.get_context_data
        and cls.render_html is kind.render_html
    )


def button_html(button, parent_context):
    """A button as ``{% component button %}`` renders it."""
    if isinstance(button, BaseDropdownMenuButton):
        return dropdown_html(button, parent_context)
    if not _renders_as(button, BaseButton):
        return button.render_html(parent_context)
    content = format_html("{} {}", icon_html(button.icon_name), button.label) if button.icon_name else format_html("{}", button.label)
    if button.url:
        return format_html('<a href="{}" class="{}"{}>{}</a>', button.url, button.classname, button.base_attrs_string, content)
    return format_html('<button class="{}"{}>{}</button>', button.classname, button.base_attrs_string, content)


def dropdown_html(button, parent_context):
    """A button with a dropdown (Wagtail's ``button_with_dropdown.html`` and ``dropdown.html``)."""
    if not _renders_as(button, BaseDropdownMenuButton):
        return button.render_html(parent_context)
    context = button.get_context_data(parent_context)
    label, aria_label = context["label"], context["title"]
    toggle_class = classnames("w-dropdown__toggle", "" if label else "w-dropdown__toggle--icon", context["toggle_classname"])
    return format_html(
        '<div data-controller="w-dropdown" class="w-dropdown"{}>'
        '<button type="button" class="{}" data-w-dropdown-target="toggle"{}>{} {}</button>'
        '<div data-w-dropdown-target="content" class="w-dropdown__content" hidden>{}</div>'
        "</div>",
        button.base_attrs_string,
        toggle_class,
        format_html(' aria-label="{}"', aria_label) if aria_label else "",
        label,
        icon_html(context["icon_name"] or "arrow-down", "w-dropdown__toggle-icon"),
        mark_safe("".join(button_html(item, context) for item in context["buttons"])),
    )


def buttons_html(buttons, parent_context):
    """Wagtail's ``shared/buttons.html``: the buttons shown, each in a list item."""
    return format_html_join("", "<li>{}</li>", ((button_html(button, parent_context),) for button in buttons if button.show))


def title_cell_html(column, context, extra_title=""):
    """Wagtail's ``tables/title_cell.html`` for a title column's cell ``context`` (its buttons
    rendered in it); ``extra_title`` follows the title (as a template's ``{% block title %}``
    adding to ``block.super``)."""
    value, title_id = context["value"], context["title_id"]
    title = format_html('<span id="{}">{}</span>', title_id, value) if title_id else format_html("{}", value)
    if context["link_url"]:
        title = format_html("<a{}>{}</a>", html_attrs(context["link_attrs"]), title)
    elif context["label_id"]:
        title = format_html('<label for="{}">{}</label>', context["label_id"], title)
    buttons = context.get("buttons")
    actions = format_html('<ul class="actions">{}</ul>', buttons_html(buttons, context)) if buttons else ""
    return format_html(
        '<td class="{}title"><div class="title-wrapper">{} {}</div>{}</td>\n',
        f"{column.classname} " if column.classname else "",
        title,
        extra_title,
        actions,
    )
