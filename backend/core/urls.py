from backend.common.routing import app_urls
from backend.core.serializers import ConfigurationSerializer

urlpatterns = app_urls(
    "core",
    {
        "configurations": ConfigurationSerializer,
    },
)
