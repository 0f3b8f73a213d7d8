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

        from wagtail.api.v3.api import api

        from .api.v3.router import router

        api.add_router("/clientdb/", router)
