"""Sign up, log in and out, and creating and revoking API keys.

The dashboard, which shows the keys next to usage and recent sessions, is in transcription/views.py:
it reads transcription's data, and accounts imports nothing of transcription.
"""

from functools import partial

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, LogoutView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import ratelimit, selectors, services
from accounts.decorators import MemberRequest, member_required
from accounts.forms import ApiKeyCreateForm, SignupForm
from accounts.models import ApiKey


def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard" if request.user.is_authenticated else "login")


TOO_MANY = ratelimit.TOO_MANY


@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        if not ratelimit.attempt_reserve(action="signup", address=ratelimit.request_address(request)):
            form.is_valid()
            form.add_error(None, TOO_MANY)
            return render(request, "accounts/signup.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        result = services.account_signup(
            tenant_name=form.cleaned_data["tenant_name"],
            username=form.cleaned_data["username"],
            email=form.cleaned_data.get("email") or "",
            password=form.cleaned_data["password1"],
        )
        login(request, result.user, backend="django.contrib.auth.backends.ModelBackend")
        # Rendered, not redirected: the key is in this one response and nowhere else.
        context = {"api_key": result.api_key, "raw_key": result.raw_key, "welcome": True}
        return render(request, "accounts/key_created.html", context)
    return render(request, "accounts/signup.html", {"form": form})


class AccountLoginView(LoginView):
    """Login attempts are reserved per client address before they are evaluated, and released on
    success; over the limit, every login (the admin's too) is refused for a while."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        return ratelimit.limited_login(request, partial(super().post, request, *args, **kwargs), self._refused)

    def _refused(self, retry_after_s: int) -> HttpResponse:
        form = self.get_form()
        form.is_valid()
        form.add_error(None, TOO_MANY)
        return self.render_to_response(self.get_context_data(form=form, rate_limited=True), status=429)


class AccountLogoutView(LogoutView):
    pass


@never_cache
@require_POST
@member_required(owner=True)
def api_key_create(request: MemberRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the key a name of 1 to 100 characters.")
        return redirect("dashboard")
    api_key, raw = services.api_key_create(tenant=request.tenant, name=form.cleaned_data["name"])
    return render(request, "accounts/key_created.html", {"api_key": api_key, "raw_key": raw, "welcome": False})


@require_POST
@member_required(owner=True)
def api_key_revoke(request: MemberRequest, prefix: str) -> HttpResponse:
    try:
        api_key = services.api_key_revoke(tenant=request.tenant, prefix=prefix)
    except ApiKey.DoesNotExist:
        raise Http404("No such key.") from None
    messages.success(request, f"Key “{api_key.name}” ({api_key.prefix}…) is revoked; it no longer works.")
    return redirect("dashboard")


@never_cache
@member_required(owner=True)
def webhook_secret(request: MemberRequest) -> HttpResponse:
    """The owner's view of the callback signing secret; a POST makes a new one (the old one stops at once)."""
    if request.method == "POST":
        services.webhook_secret_rotate(tenant_id=request.tenant.pk)
        messages.success(request, "A new signing secret is in force; callbacks are signed with it from now on.")
        return redirect("webhook_secret")
    secret = selectors.webhook_secret_get(tenant_id=request.tenant.pk)
    return render(request, "accounts/webhook_secret.html", {"secret": secret})
