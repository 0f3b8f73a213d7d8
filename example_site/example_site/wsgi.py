"""WSGI entry point of the example site."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings")

application = get_wsgi_application()
# A collection of the youngest objects every 50,000 new ones instead of 700: an admin page makes
# tens of thousands (docs/deployment.md, "The garbage collector").
gc.set_threshold(50_000, *gc.get_threshold()[1:])
