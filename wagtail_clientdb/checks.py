from django.apps import apps
from django.core.checks import Error, register


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
