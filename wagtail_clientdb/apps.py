from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WagtailClientDBAppConfig(AppConfig):
    name = "wagtail_clientdb"
    label = "wagtail_clientdb"
    verbose_name = _("Client DB")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.backends.signals import connection_created

        from . import checks, signal_handlers  # noqa: F401
        from .name_order import register_collation
        from .permissions import register_permission_policies

        connection_created.connect(register_collation, dispatch_uid="clientdb_name_collation")

        register_permission_policies()

        from wagtail.api.v3.api import api

        from .api.v3.router import router

        api.add_router("/clientdb/", router)
