"""Root URLs: health without auth, the API root, and one prefix per app."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from backend.common.routing import ApiRoot
from backend.settings import APPS


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    # Django's default 404 page is HTML; every answer of this API is JSON.
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error."}, status=500)


urlpatterns = [
    path("api/health/", health, name="health"),
    path("api/", ApiRoot.as_view(), name="api-root"),
    *(path(f"api/{app}/", include(f"backend.{app}.urls")) for app in APPS),
]

handler404 = not_found
handler500 = server_error
