"""Routing file contract and recipient resolution (pure core: who hears about which signal).

The routing file maps roles to addresses and to the urgencies each role accepts. The
investigator role is routed per site only, so one site's investigators never receive
another site's signal. A role that should hear about a signal but has nowhere to go is
never dropped: its share goes to the safety officer with a note saying why.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas import Role, SignalRaised, SignalUpdated, Urgency
from services.notify.core.errors import RoutingFileError

#: Plain ASCII addresses only: a CR, LF, comma or angle bracket can never reach a header.
Address = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$", max_length=254),
]
SiteCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
GapReason = Literal["no_site_entry", "no_addresses", "role_not_configured"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoleRoute(_Model):
    """Addresses of one role and the urgencies it is told about."""

    addresses: tuple[Address, ...] = ()
    urgencies: tuple[Urgency, ...]
    #: Rule categories this role hears about (e.g. "death", "susar"); empty means all.
    categories: tuple[SiteCode, ...] = ()

    def accepts(self, urgency: Urgency, category: str | None = None) -> bool:
        """Whether this role is told about signals of this urgency (and category)."""
        wanted = not self.categories or category is None or category in self.categories
        return urgency in self.urgencies and wanted


class SiteRoutes(_Model):
    """Roles routed per site; only investigators for now."""

    investigator: RoleRoute | None = None


class Routing(_Model):
    """The whole routing file, version 1."""

    version: Literal[1]
    roles: dict[Role, RoleRoute]
    sites: dict[SiteCode, SiteRoutes] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_roles(self) -> Self:
        if Role.INVESTIGATOR in self.roles:
            msg = (
                "roles.investigator: investigators are routed per site only, "
                "under [sites.<site_id>.investigator]"
            )
            raise ValueError(msg)
        officer = self.roles.get(Role.SAFETY_OFFICER)
        if officer is None or not officer.addresses:
            msg = (
                "roles.safety_officer.addresses: at least one address is required; "
                "the safety officer receives every routing gap"
            )
            raise ValueError(msg)
        return self


@dataclass(frozen=True, slots=True)
class RoutingGap:
    """A role that should have heard about a signal but has no address to go to."""

    role: Role
    reason: GapReason
    site_id: str

    def note(self) -> str:
        """Explain the gap to the safety officer who receives the message instead."""
        if self.reason == "no_site_entry":
            where = f"no investigator entry for site {self.site_id}"
        elif self.reason == "no_addresses":
            where = f"the {self.role.value} entry has no addresses"
        else:
            where = f"no entry for the {self.role.value} role"
        return f"Routing gap: {where} in the routing file; you receive this in their place."


@dataclass(frozen=True, slots=True)
class Recipient:
    """One address that receives a signal, in the role it receives it."""

    role: Role
    address: str
    gaps: tuple[RoutingGap, ...] = ()


def parse_routing(text: str, *, source: str = "routing file") -> Routing:
    """Parse and validate routing TOML; errors name the offending key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise RoutingFileError(msg) from exc
    try:
        return Routing.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<file>'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        msg = f"{source}: {problems}"
        raise RoutingFileError(msg) from exc


def _route_of(role: Role, site_id: str, routing: Routing) -> RoleRoute | RoutingGap:
    if role is Role.INVESTIGATOR:
        site = routing.sites.get(site_id)
        route = site.investigator if site is not None else None
        if route is None:
            return RoutingGap(role, "no_site_entry", site_id)
    else:
        found = routing.roles.get(role)
        if found is None:
            return RoutingGap(role, "role_not_configured", site_id)
        route = found
    return route if route.addresses else RoutingGap(role, "no_addresses", site_id)


def recipients_for(signal: SignalRaised | SignalUpdated, routing: Routing) -> tuple[Recipient, ...]:
    """Resolve a signal's roles to addresses, one recipient per address, in role order.

    A role whose entry does not accept the signal's urgency is skipped on purpose; a role
    with no entry or no addresses becomes a gap, and every gap goes to the safety officer.
    """
    urgency = signal.payload.urgency
    chosen: dict[str, Recipient] = {}
    gaps: list[RoutingGap] = []
    for role in dict.fromkeys(signal.payload.recipients):
        route = _route_of(role, signal.site_id, routing)
        if isinstance(route, RoutingGap):
            gaps.append(route)
        elif route.accepts(urgency, signal.payload.category):
            for address in route.addresses:
                chosen.setdefault(address.lower(), Recipient(role, address))
    if gaps:
        _add_fallback(chosen, tuple(gaps), routing)
    # The safety officer's copy goes out first: they act on every U0 (RULES.md §0.3).
    return tuple(sorted(chosen.values(), key=lambda r: _SEND_ORDER.get(r.role, len(_SEND_ORDER))))


_SEND_ORDER = {"safety_officer": 0, "backup": 1, "investigator": 2, "dsmb_chair": 3, "dsmb": 4}


def _add_fallback(
    chosen: dict[str, Recipient], gaps: tuple[RoutingGap, ...], routing: Routing
) -> None:
    # The safety officer receives every gap, whatever urgencies they normally accept:
    # a misconfigured route must surface, not silently swallow a serious event.
    officer = routing.roles[Role.SAFETY_OFFICER]
    for address in officer.addresses:
        key = address.lower()
        current = chosen.get(key)
        role = current.role if current is not None else Role.SAFETY_OFFICER
        chosen[key] = Recipient(role, current.address if current else address, gaps)


def addresses_of(role: Role, site_id: str, routing: Routing) -> tuple[Recipient, ...]:
    """Everyone playing `role` for `site_id`, whatever urgencies they accept.

    Used for escalation and failover, which are explicit decisions to reach a role. A role
    with no addresses falls back to the safety officer, with the gap noted, as for signals.
    """
    route = _route_of(role, site_id, routing)
    if isinstance(route, RoutingGap):
        officer = routing.roles[Role.SAFETY_OFFICER]
        return tuple(Recipient(Role.SAFETY_OFFICER, a, (route,)) for a in officer.addresses)
    return tuple(Recipient(role, address) for address in route.addresses)
