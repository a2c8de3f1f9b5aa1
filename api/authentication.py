"""Who is calling the REST API: an API key (Bearer) or a logged-in member, and for which tenant."""

from dataclasses import dataclass
from typing import cast

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from accounts import selectors, services
from accounts.credentials import parse_bearer
from accounts.models import ApiKey
from accounts.principal import Principal, principal_for_api_key, principal_for_membership


@dataclass(frozen=True)
class KeyUser:
    """request.user for a key-authenticated call: not a person, but authenticated."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[KeyUser, ApiKey] | None:
        raw = parse_bearer(authentication.get_authorization_header(request).decode("latin-1"))
        if raw is None:
            return None
        api_key = selectors.api_key_authenticate(raw_key=raw)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or suspended API key.")
        services.api_key_mark_used(api_key_id=api_key.pk)
        return KeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def caller_of(request: Request) -> Principal | None:
    """Who calls: a key acts with the owner's role (it is the tenant's credential), a member with theirs."""
    if isinstance(request.auth, ApiKey):
        return principal_for_api_key(request.auth)
    membership = selectors.membership_for_user(user=request.user)
    return principal_for_membership(membership) if membership else None


class _PrincipalRequest(Request):
    """A request as IsTenantMember leaves it: with the caller it found (None: refused)."""

    caller: Principal | None


def request_caller(request: Request) -> Principal:
    """The caller of a view behind IsTenantMember, which refused the request if there was none."""
    caller = cast(_PrincipalRequest, request).caller
    assert caller is not None
    return caller


class IsTenantMember(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        found = cast(_PrincipalRequest, request)
        found.caller = caller_of(request)
        return found.caller is not None


class IsTenantOwner(IsTenantMember):
    message = "Only the tenant's owner may manage API keys."

    def has_permission(self, request: Request, view: object) -> bool:
        return super().has_permission(request, view) and request_caller(request).is_owner


class IsTenantOwnerToChange(IsTenantMember):
    """Any member (or key) may read; only the owner, or a key, which acts as the owner, may change."""

    message = "Only the tenant's owner may change its settings."

    def has_permission(self, request: Request, view: object) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in permissions.SAFE_METHODS or request_caller(request).is_owner


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "An API key: `asr_<prefix>_<secret>`."}
