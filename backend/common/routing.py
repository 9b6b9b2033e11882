"""Registering resources: one viewset per serializer, and the API root that lists them all."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, reverse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.serializers import ModelSerializer
from rest_framework.views import APIView

from backend.common.filters import filterset_for
from backend.common.viewsets import TrackedViewSet


@dataclass(frozen=True)
class Resource:
    app: str
    name: str

    @property
    def list_route(self) -> str:
        return f"{self.app}-{self.name}-list"


# Filled as each app's urls module is imported by the root urlconf.
RESOURCES: list[Resource] = []


def viewset_for(serializer_class: type[ModelSerializer]) -> type[TrackedViewSet]:
    """The viewset for one resource, with its generated filter set."""
    model = serializer_class.Meta.model
    attributes = {
        "queryset": model._default_manager.all(),
        "serializer_class": serializer_class,
        "filterset_class": filterset_for(model),
    }
    return type(f"{model.__name__}ViewSet", (TrackedViewSet,), attributes)


def app_urls(
    app: str, resources: dict[str, type[ModelSerializer]]
) -> list[URLPattern | URLResolver]:
    """Routes for one app's resources, each named `<app>-<resource>-list/detail`."""
    router = SimpleRouter()
    for name, serializer_class in resources.items():
        router.register(name, viewset_for(serializer_class), basename=f"{app}-{name}")
        RESOURCES.append(Resource(app, name))
    return router.urls


class ApiRoot(APIView):
    """`{app: {resource: absolute list url}}` for every registered resource."""

    def get(self, request: Request) -> Response:
        root: dict[str, dict[str, str]] = {}
        for resource in RESOURCES:
            url = request.build_absolute_uri(reverse(resource.list_route))
            root.setdefault(resource.app, {})[resource.name] = url
        return Response(root)
