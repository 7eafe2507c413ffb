"""Converters: text → value, or ValueError with the reason (the message of the issue).

The field readers (`Fields.converted`) and the lean pod path share them, so that both read
a value the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network

from topology.model import GLOBAL_VNID, MAX_VNID, MIN_VNID, TUN0_OFPORT, VXLAN_OFPORT


def parse_ipv4(text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise ValueError("invalid IPv4 address") from None


_CIDR_SHAPE = re.compile(r"[0-9.]+/[0-9]{1,2}")


def parse_cidr(text: str) -> IPv4Network:
    """A canonical IPv4 CIDR: host bits set is an error, as in openshift's ParseCIDRMask."""
    if not _CIDR_SHAPE.fullmatch(text):
        raise ValueError("invalid IPv4 CIDR")
    try:
        return IPv4Network(text)
    except ValueError:
        pass
    try:
        network = IPv4Network(text, strict=False)
    except ValueError:
        raise ValueError("invalid IPv4 CIDR") from None
    raise ValueError(f"host bits set; did you mean {network}?")


def _integer_text(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError("must be an integer") from None


def vnid_problem(vnid: int) -> str | None:
    if vnid == GLOBAL_VNID or MIN_VNID <= vnid <= MAX_VNID:
        return None
    return f"VNID must be 0 (global) or between {MIN_VNID} and {MAX_VNID}"


def _between(low: int, high: int, why: str = "") -> Callable[[int], str | None]:
    message = f"must be between {low} and {high}" + (f" ({why})" if why else "")
    return lambda value: None if low <= value <= high else message


PORT_RANGE = _between(1, 65535)
_OFPORT_MAX = 0xFEFF
_RESERVED_OFPORTS = {VXLAN_OFPORT: "vxlan0", TUN0_OFPORT: "tun0"}
_IFNAMSIZ = 16  # Linux: names are at most 15 bytes plus the NUL


def vnid_text(text: str) -> int:
    vnid = _integer_text(text)
    if (problem := vnid_problem(vnid)) is not None:
        raise ValueError(problem)
    return vnid


def ofport_text(text: str) -> int:
    ofport = _integer_text(text)
    if ofport in _RESERVED_OFPORTS:
        raise ValueError(f"ofport {ofport} is {_RESERVED_OFPORTS[ofport]}'s")
    if not 1 <= ofport <= _OFPORT_MAX:
        raise ValueError(f"must be between 1 and {_OFPORT_MAX} (OVS's ofport range)")
    return ofport


def interface_text(text: str) -> str:
    if len(text.encode()) >= _IFNAMSIZ:
        raise ValueError(f"interface names are at most {_IFNAMSIZ - 1} characters")
    if any(c in "/:" or c.isspace() for c in text) or text in (".", ".."):
        raise ValueError("an interface name must not contain '/', ':' or whitespace")
    return text


def datapath_id_text(text: str) -> int:
    try:
        dpid = int(text, 16)
    except ValueError:
        raise ValueError("must be a hexadecimal datapath id") from None
    if not 1 <= dpid <= (1 << 64) - 1:
        raise ValueError("must be between 0x1 and 0xffffffffffffffff")
    return dpid


_MAC_SHAPE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def mac_text(text: str) -> str:
    """A unicast Ethernet address, written xx:xx:xx:xx:xx:xx; returned in lower case."""
    if not _MAC_SHAPE.fullmatch(text):
        raise ValueError("must be a MAC address written as six hex pairs, e.g. 0a:58:0a:80:00:01")
    if int(text[:2], 16) & 1:
        raise ValueError("must be a unicast MAC address (the first octet's low bit clear)")
    return text.lower()


def timestamp_text(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an RFC 3339 timestamp") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def one_of(*allowed: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"must be {' or '.join(allowed)}")
        return text

    return check


PROTOCOL = one_of("TCP", "UDP", "SCTP")
# Kubernetes' IsDNS1123Subdomain, as 3.11 applies it to EgressNetworkPolicy dnsName.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def dns_name_text(text: str) -> str:
    if len(text) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(text):
        raise ValueError("must conform to DNS 952 subdomain conventions")
    return text
