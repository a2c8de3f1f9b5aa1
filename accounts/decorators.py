"""Views that act for a tenant get it from the logged-in user's membership, never from the URL."""

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import render

from accounts import selectors
from accounts.models import Membership, Tenant


class MemberRequest(HttpRequest):
    """The request a ``member_required`` view gets: a logged-in user and the tenant they belong to."""

    user: User
    membership: Membership
    tenant: Tenant


def member_required(view: Callable[..., HttpResponse] | None = None, *, json: bool = False, owner: bool = False) -> Any:
    """Log in first, then set ``request.tenant`` and ``request.membership``.

    With ``json=True`` (fetch endpoints) refusals are JSON 401/403 instead of a redirect or a page.
    With ``owner=True`` only the tenant's owner may go on (managing API keys, as in the REST API).
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                if json:
                    return JsonResponse({"error": "not_logged_in", "message": "Log in again."}, status=401)
                return redirect_to_login(request.get_full_path())
            membership = selectors.membership_for_user(user=request.user)
            if membership is None:
                if json:
                    return JsonResponse({"error": "no_workspace", "message": "No workspace."}, status=403)
                return render(request, "accounts/no_workspace.html", status=403)
            if owner and membership.role != Membership.Role.OWNER:
                return HttpResponseForbidden("Only the workspace's owner may manage API keys.")
            member = cast(MemberRequest, request)
            member.membership = membership
            member.tenant = membership.tenant
            return view(member, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
