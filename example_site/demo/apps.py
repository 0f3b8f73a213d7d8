from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for the example site (the ``load_demo_data`` command); no models."""

    name = "demo"
    label = "demo"
    verbose_name = "Demo data"
