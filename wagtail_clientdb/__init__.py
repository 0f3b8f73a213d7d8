"""A multi-branch customer database for the Wagtail admin."""

__version__ = "0.1.0"
