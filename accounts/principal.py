"""Who a request or a stream acts for, the same for every entry point (WebSocket, REST, pages).

An API key acts for its tenant with the owner's role (it is the tenant's credential); a logged-in
member with their membership's role; a short-lived stream token (minted by a logged-in member for
one WebSocket) can only stream, so it carries the member role.
"""

from dataclasses import dataclass

from accounts.models import ApiKey, Membership, StreamToken, Tenant


@dataclass(frozen=True)
class Principal:
    tenant: Tenant
    role: str  # Membership.Role
    api_key_id: int | None = None  # the key used, if one was

    @property
    def tenant_id(self) -> int:
        return self.tenant.pk

    @property
    def is_owner(self) -> bool:
        return self.role == Membership.Role.OWNER


def principal_for_api_key(api_key: ApiKey) -> Principal:
    return Principal(tenant=api_key.tenant, role=Membership.Role.OWNER, api_key_id=api_key.pk)


def principal_for_membership(membership: Membership) -> Principal:
    return Principal(tenant=membership.tenant, role=membership.role)


def principal_for_stream_token(token: StreamToken) -> Principal:
    return Principal(tenant=token.tenant, role=Membership.Role.MEMBER)
