from pathlib import Path

from django.apps import apps
from django.core.checks import Error, Tags, Warning, register


@register()
def required_apps_check(app_configs, **kwargs):
    """The app needs Wagtail's settings and snippets apps and django-taggit."""
    errors = []
    for app, hint in [
        ("wagtail.contrib.settings", "Client DB settings are a Wagtail generic setting."),
        ("wagtail.snippets", "The Client DB admin is built from snippet viewsets."),
        ("taggit", "Customer tags use django-taggit."),
    ]:
        if not apps.is_installed(app):
            errors.append(
                Error(
                    f"wagtail_clientdb needs '{app}' in INSTALLED_APPS.",
                    hint=hint,
                    id="wagtail_clientdb.E001",
                )
            )
    return errors


@register()
def settings_names_check(app_configs, **kwargs):
    """A misspelt key in WAGTAIL_CLIENTDB would silently keep the default."""
    import difflib

    from django.conf import settings

    from .conf import DEFAULTS

    warnings = []
    for name in getattr(settings, "WAGTAIL_CLIENTDB", {}):
        if name not in DEFAULTS:
            close = difflib.get_close_matches(name, DEFAULTS, n=1)
            warnings.append(
                Warning(
                    f"WAGTAIL_CLIENTDB has an unknown setting {name!r}; it is ignored.",
                    hint=f"Did you mean {close[0]!r}?" if close else f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                    id="wagtail_clientdb.W002",
                )
            )
    return warnings


@register()
def snippets_index_check(app_configs, **kwargs):
    """Wagtail's Snippets page counts every object of each snippet model it lists; with
    ``WAGTAILSNIPPETS_MENU_SHOW_ALL`` it lists the Client DB's models too (they have their own
    menu otherwise), and the count is Wagtail's, not a branch's."""
    from django.conf import settings

    if not getattr(settings, "WAGTAILSNIPPETS_MENU_SHOW_ALL", False):
        return []
    return [
        Warning(
            "WAGTAILSNIPPETS_MENU_SHOW_ALL lists the Client DB's models on Wagtail's Snippets page "
            "(/admin/snippets/) with the number of all their objects: branch staff see how many customers "
            "and appointments the whole company has.",
            hint="Leave WAGTAILSNIPPETS_MENU_SHOW_ALL unset (the Client DB has its own menu), or silence this "
            "warning if every user of the admin may know these totals.",
            id="wagtail_clientdb.W003",
        )
    ]


@register()
def private_files_check(app_configs, **kwargs):
    """Uploaded customer lists and exports must not lie where media or static files are served from."""
    from django.conf import settings

    from .storage import STORAGE_ALIAS, private_root

    configured = settings.STORAGES.get(STORAGE_ALIAS)
    if configured is not None:
        if configured == settings.STORAGES.get("default"):
            return [
                Error(
                    "STORAGES['wagtail_clientdb'] is the same storage as the media files.",
                    hint="Files with personal data need a private storage (e.g. a private S3 bucket) that is not served.",
                    id="wagtail_clientdb.E002",
                )
            ]
        location = configured.get("OPTIONS", {}).get("location")
        root = Path(location).resolve() if location else None
    else:
        root = private_root()
    errors = []
    for name in ("MEDIA_ROOT", "STATIC_ROOT"):
        served = getattr(settings, name, None)
        if root is None or not served:
            continue
        served = Path(served).resolve()
        if root == served or served in root.parents:
            errors.append(
                Error(
                    f"The private folder of wagtail_clientdb ({root}) lies inside {name}, which is served publicly.",
                    hint="Set WAGTAIL_CLIENTDB['PRIVATE_ROOT'] (or STORAGES['wagtail_clientdb']) to a folder outside it.",
                    id="wagtail_clientdb.E003",
                )
            )
    return errors


@register(Tags.database)
def name_collation_check(app_configs, databases=None, **kwargs):
    """Names sort by the PostgreSQL database's collation; a byte-order one puts "Böhm" after "Zorn"."""
    from django.db import connections

    warnings = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        with connection.cursor() as cursor:
            collation, by_byte_order = sorting_of(cursor, connection.pg_version)
        if by_byte_order:
            warnings.append(
                Warning(
                    f"The database '{connection.settings_dict['NAME']}' sorts text by byte order ({collation}): "
                    "customer names with umlauts or accents sort after Z.",
                    hint="Create the database with a linguistic collation: with ICU (PostgreSQL 15 or later), "
                    "CREATE DATABASE … LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' TEMPLATE template0; or with a locale "
                    "the server has (locale -a), CREATE DATABASE … LC_COLLATE 'de_DE.UTF-8' LC_CTYPE 'de_DE.UTF-8' "
                    "TEMPLATE template0.",
                    id="wagtail_clientdb.W001",
                )
            )
    return warnings


def sorting_of(cursor, server_version):
    """``(collation, whether it sorts by byte order)`` of the database ``cursor`` is connected to.

    Since PostgreSQL 15 a database names its collation provider: the C library's (``c``, its
    collation in ``datcollate``), ICU's (``i``, always linguistic; ``datcollate`` still says what
    the C library would use), or, since 17, the builtin one (``b``: code point order)."""
    if server_version < 150000:
        cursor.execute("SELECT 'c', datcollate, NULL FROM pg_database WHERE datname = current_database()")
    else:
        locale = "datlocale" if server_version >= 170000 else "daticulocale"
        cursor.execute(f"SELECT datlocprovider, datcollate, {locale} FROM pg_database WHERE datname = current_database()")
    provider, collation, locale = cursor.fetchone()
    if provider == "i":
        return f"ICU {locale}", False
    if provider == "b":
        return f"builtin {locale}", True
    return collation, collation.split(".")[0] in ("C", "POSIX")
