from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for the example site (the ``load_demo_data`` command) and its home page."""

    name = "demo"
    label = "demo"
    verbose_name = "Demo data"
