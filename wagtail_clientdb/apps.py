from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WagtailClientDBAppConfig(AppConfig):
    name = "wagtail_clientdb"
    label = "wagtail_clientdb"
    verbose_name = _("Client DB")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks, signal_handlers  # noqa: F401
        from .permissions import register_permission_policies

        register_permission_policies()
