from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.api.v3.urls import api

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("api/v3/", api.urls),
    path("", include(wagtail_urls)),
]
