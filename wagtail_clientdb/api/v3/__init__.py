"""The Client DB router on Wagtail's API v3 (registered in ``WagtailClientDBAppConfig.ready``)."""
