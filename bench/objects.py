"""A generated cluster in memory, before it is written: its nodes, namespaces, Deployments and
their pods, services, and the seeded source of UIDs, resourceVersions and random names."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bench.addressplan import AddressPlan
from bench.catalogue import Port
from bench.params import Params

HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet


def dotted(address: int) -> str:
    """An IPv4 address held as an int, as text."""
    return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}"


class Ids:
    """UIDs, resourceVersions and random names, all from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._version = 1000

    def uid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def version(self) -> str:
        self._version += self.rng.randrange(1, 40)
        return f'"{self._version}"'

    def token(self, length: int) -> str:
        return "".join(self.rng.choices(HASH_ALPHABET, k=length))


@dataclass
class Node:
    host: str
    ip: int
    role: str
    created: int
    uid: str
    node_uid: str
    version: str
    subnet: int = 0  # network address
    prefix: int = 0
    datapath_id: str | None = None
    egress_ips: list[int] = field(default_factory=list)
    egress_cidrs: list[str] = field(default_factory=list)


@dataclass
class Namespace:
    name: str
    system: bool
    created: int
    labels: dict[str, str]
    global_: bool = False  # netid 0 written in the NetNamespace
    netid: int | None = None
    change: str | None = None  # change-network annotation
    join_target: bool = False
    egress_ips: list[int] = field(default_factory=list)
    multicast: bool = False
    apps: list[Deployment] = field(default_factory=list)
    index: int = 0
    uid_nn: str = ""  # the NetNamespace's
    uid_ns: str = ""  # the Namespace's
    version_nn: str = ""
    version_ns: str = ""

    @property
    def own_vnid(self) -> bool:
        """Its VNID is its own and not 0 (egress IPs and firewalls need that)."""
        return not (self.system or self.global_ or self.change or self.join_target)


@dataclass
class Deployment:
    namespace: Namespace
    app: str
    tier: str
    image: str
    ports: list[Port]
    hash: str
    uid: str
    created: int
    replicas: int
    pods: list[Pod] = field(default_factory=list)


@dataclass
class Pod:
    deployment: Deployment
    name: str
    uid: str
    created: int
    node: Node | None = None
    ip: int = 0
    ofport: int = 0
    interface: str = ""


@dataclass
class Service:
    namespace: Namespace
    name: str
    ip: str | None  # None: headless
    ports: list[Port]
    selector: list[tuple[str, str]] | None  # None: the kubernetes service
    created: int
    uid: str


@dataclass
class Cluster:
    params: Params
    plan: AddressPlan
    nodes: list[Node] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
