from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", views.AccountLoginView.as_view(), name="login"),
    path("logout/", views.AccountLogoutView.as_view(), name="logout"),
    path("keys/", views.api_key_create, name="api_key_create"),
    path("keys/<str:prefix>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("webhook-secret/", views.webhook_secret, name="webhook_secret"),
]
