"""Where a trigger may send a request whose URL came from event data (server-side request forgery guard).

A trigger parameter can set ``http.url`` from the event, so whoever can send
an event could make the sensor call its own pod (loopback), the node
(link-local) or the cloud metadata service, which hands out credentials. A
URL chosen that way is checked before any connection: the host name, and every
address it resolves to, must not be loopback, link-local, unspecified or a
metadata endpoint (169.254.0.0/16, ``fd00:ec2::254``,
``metadata.google.internal``). ``KNEVENTS_HTTP_ALLOW_INTERNAL_TARGETS=true``
turns the check off. URLs written in the Sensor itself are trusted as written.

The check resolves the name itself; a name whose DNS answer changes between
the check and the connect (rebinding) is not covered. Only the addresses, not
private networks (10/8 …), are refused: in-cluster services live there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from knevents import errors

__all__ = ["check", "url_from_event"]

_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
                             "instance-data.ec2.internal"})
_METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("169.254.169.254")})
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def url_from_event(trigger: Any, kind: str = "http") -> bool:
    """Whether a trigger-level parameter sets ``<kind>.url`` (the URL then comes from event data)."""
    for parameter in getattr(trigger, "parameters", None) or []:
        dest = str(getattr(parameter, "dest", "") or "")
        if dest == f"{kind}.url" or dest.startswith(f"{kind}.url."):
            return True
    return False


def _refused(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    return None


async def check(url: str, shown: str) -> None:
    """TriggerError when ``url`` names or resolves to an internal address; nothing is connected to."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        raise errors.TriggerError(f"{shown}: no host in the URL")
    if host in _METADATA_HOSTS or host == "localhost" or host.endswith(".localhost"):
        raise errors.TriggerError(f"{shown}: the event chose host {host!r}, an internal name; refused "
                                  "(KNEVENTS_HTTP_ALLOW_INTERNAL_TARGETS)")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            return  # unresolvable: the connection fails by itself, with its own error
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        why = _refused(address)
        if why is not None:
            raise errors.TriggerError(f"{shown}: the event chose a URL that reaches {why} ({address}); refused "
                                      "(KNEVENTS_HTTP_ALLOW_INTERNAL_TARGETS)")
