"""Which ``Host`` and ``Origin`` a server answers, and whether its address is loopback.

A web page the user visits can send requests to any address the user's machine reaches,
127.0.0.1 included; through DNS rebinding it can even read the answers, because the browser
thinks the page and the server share a name (``evil.example``). What keeps such pages out is
the ``Host`` header, which names the page's host, and ``Origin``, which names the page that
sent a request. So every server, whatever its binding, answers only the host names of an
allow-list (:class:`AllowedHosts`), and a request that carries ``Origin`` must come from one
of them.

The allow-list holds the bound address and the loopback names, each with and without the
bound port, plus the names given with ``sg2img serve --allowed-host``. A name given without
a port also gets the bound port; a name given with one (``example.org:8443``) only that.
Names compare case-insensitively, IP addresses by value (``[::ffff:127.0.0.1]`` is
``[::ffff:7f00:1]``); anything else must match exactly (``localhost.`` is not
``localhost``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..files import short

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# A DNS name or an IPv4 address as written in a Host header: letters, digits, '-', '_', '.'.
_NAME = re.compile(r"[a-z0-9_.-]+")


def is_loopback(host: str) -> bool:
    """True when a socket bound to ``host`` only accepts connections from this machine.

    ``host`` is resolved as binding it would (``socket.getaddrinfo``), so ``127.1``,
    ``::ffff:127.0.0.1`` and ``localhost`` are loopback and ``0.0.0.0`` is not. A name that
    also resolves to a non-loopback address, or not at all, is not loopback.
    """
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name:
        return False  # "" binds every interface
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(_loopback_address(a) for a in addresses)


def _loopback_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])  # without an IPv6 zone ("%lo")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@dataclass(frozen=True)
class HostName:
    """A host as a Host header or an Origin writes it: a canonical name and maybe a port.

    Attributes:
        name: lower case; an IP address in its canonical form (IPv6 without brackets).
        port: the port written after the name, or None.
    """

    name: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostName:
        """``"example.org"``, ``"example.org:8000"``, ``"[::1]:8000"``, ``"::1"``, ...

        Raises:
            ValueError: not a host name, IP address or ``[IPv6]`` with an optional port.
        """
        raw = text.strip().lower()
        port: str | None = None
        if raw.startswith("["):
            name, sep, rest = raw[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"not a host name: {short(text)}")
            port = rest[1:] if rest else None
            name = _ip_text(name, text)
        elif raw.count(":") > 1:  # a bare IPv6 address, which cannot carry a port
            name = _ip_text(raw, text)
        else:
            name, sep, port = raw.partition(":")
            port = port if sep else None
            if not _NAME.fullmatch(name):
                raise ValueError(f"not a host name: {short(text)} (a name or an IP address "
                                 f"and an optional :PORT)")
            try:
                name = str(ipaddress.ip_address(name))
            except ValueError:
                pass
        if port is not None and not (port.isascii() and port.isdigit()):
            raise ValueError(f"not a host name: {short(text)} (a name or an IP address and "
                             f"an optional :PORT, without a scheme such as http:// or a path)")
        if port is not None and not (len(port) <= 5 and 0 < int(port) <= 65535):
            raise ValueError(f"bad port in host {short(text)}; a port is 1..65535")
        return cls(name, None if port is None else int(port))

    def __str__(self) -> str:
        name = f"[{self.name}]" if ":" in self.name else self.name
        return name if self.port is None else f"{name}:{self.port}"


def _ip_text(text: str, original: str) -> str:
    try:
        return str(ipaddress.IPv6Address(text.split("%")[0]))
    except ValueError:
        raise ValueError(f"not an IPv6 address: {short(original)}") from None


class AllowedHosts:
    """The ``Host`` names (with their ports) a server answers, and the origins it trusts.

    Args:
        hosts: the allowed hosts, each ``NAME`` or ``NAME:PORT`` (:meth:`HostName.parse`).

    Raises:
        ValueError: a host that does not parse, or an empty list.
    """

    def __init__(self, hosts: Iterable[str]) -> None:
        self.hosts = frozenset(HostName.parse(h) for h in hosts)
        if not self.hosts:
            raise ValueError("the list of allowed hosts is empty; a server would answer "
                             "nobody")

    @classmethod
    def for_binding(cls, host: str, port: int, extra: Sequence[str] = ()) -> AllowedHosts:
        """The allow-list of a server bound to ``host``:``port``.

        The bound address, the loopback names and each of ``extra``, with and without
        ``port`` (a name in ``extra`` that carries its own port keeps only that one).

        Raises:
            ValueError: a name in ``extra`` is not a host name.
        """
        names = [host, *LOOPBACK_NAMES] if host.strip("[] ") else list(LOOPBACK_NAMES)
        hosts: list[str] = []
        for name in names:
            h = HostName.parse(_bracketed(name))
            hosts += [str(h), str(HostName(h.name, port))]
        for name in extra:
            h = HostName.parse(_bracketed(name))
            hosts += [str(h)] if h.port is not None else [str(h), str(HostName(h.name, port))]
        return cls(hosts)

    def allows_host(self, value: str) -> bool:
        """True when ``value``, a ``Host`` header, names an allowed host."""
        try:
            return HostName.parse(value) in self.hosts
        except ValueError:
            return False

    def allows_origin(self, value: str) -> bool:
        """True when ``value``, an ``Origin`` header, is a page served from an allowed host
        (``http`` or ``https``); ``null`` and other schemes are not."""
        scheme, sep, rest = value.strip().partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or "/" in rest:
            return False
        return self.allows_host(rest)

    def __iter__(self):
        return iter(sorted(str(h) for h in self.hosts))


def check_host_names(names: Sequence[str], option: str = "--allowed-host") -> None:
    """Raise ``ValueError`` naming ``option`` unless every name is a host name, an IP
    address or either with a port (``example.org``, ``192.168.1.5:8000``, ``[::1]``)."""
    for name in names:
        try:
            HostName.parse(_bracketed(name))
        except ValueError as e:
            raise ValueError(f"{option}: {e}") from None


def _bracketed(name: str) -> str:
    """An IPv6 address as given to ``--host`` (``::1``) in a form that can take a port."""
    name = name.strip()
    if name.count(":") > 1 and not name.startswith("["):
        return f"[{name}]"
    return name
