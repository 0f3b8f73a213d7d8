from django.conf import settings
from django.conf.urls.static import static
from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.api.v3.urls import api
from wagtail.documents import urls as wagtaildocs_urls

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    # Wagtail's API v3 (a preview in Wagtail 8) with the Client DB's endpoints at /api/v3/clientdb/.
    path("api/v3/", api.urls),
]

if settings.DEBUG:
    # Uploaded images and documents, served by runserver for the demo only.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# Wagtail serves every other path as a page, so it comes last.
urlpatterns += [path("", include(wagtail_urls))]
