"""The client's address and scheme behind reverse proxies (X-Forwarded-For / -Proto).

The headers are read only when the request's peer is one of the configured trusted proxies;
from anyone else they are ignored, so a client cannot pick the address that the login rate
limiter and the audit log see. Behind a trusted peer, aiohttp-remotes walks X-Forwarded-For
from the right past further trusted proxies to the first untrusted address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_remotes import XForwardedFiltered

from callcenter.config import ConfigError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = IPv4Network | IPv6Network


def trusted_networks(setting: str) -> list[Network]:
    """``trusted_proxies``: comma-separated addresses or networks (``10.0.0.0/8``)."""
    networks = []
    for item in (part.strip() for part in setting.split(",")):
        if item:
            try:
                networks.append(ip_network(item, strict=False))
            except ValueError:
                problem = f"trusted_proxies: {item!r} is not an address or network"
                raise ConfigError(problem) from None
    return networks


def forwarded_middleware(setting: str) -> list[Middleware]:
    """The middleware to install first (none when no proxy is trusted)."""
    networks = trusted_networks(setting)
    if not networks:
        return []
    forwarded = XForwardedFiltered(networks)

    @web.middleware
    async def from_trusted_proxies(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if isinstance(peer, tuple) and any(ip_address(peer[0]) in net for net in networks):
            return await forwarded.middleware(request, handler)
        return await handler(request)

    return [from_trusted_proxies]
