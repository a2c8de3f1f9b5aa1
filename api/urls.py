from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import views

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/tokens", views.StreamTokenView.as_view(), name="api-tokens"),
    path("api/v1/sessions", views.SessionListView.as_view(), name="api-sessions"),
    path("api/v1/sessions/<uuid:id>", views.SessionDetailView.as_view(), name="api-session-detail"),
    path("api/v1/usage", views.UsageView.as_view(), name="api-usage"),
    path("api/v1/settings", views.SettingsView.as_view(), name="api-settings"),
    path("api/v1/keys", views.ApiKeyListCreateView.as_view(), name="api-keys"),
    path("api/v1/keys/<str:prefix>/revoke", views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("api/v1/transcriptions", views.TranscriptionListCreateView.as_view(), name="api-transcriptions"),
    path("api/v1/transcriptions/<uuid:id>", views.TranscriptionDetailView.as_view(), name="api-transcription-detail"),
]
