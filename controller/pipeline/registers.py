"""Typed NXM registers: which bits of which register carry what.

| field    | bits        | meaning                                                   |
|----------|-------------|-----------------------------------------------------------|
| SRC_VNID | reg0[0..31] | source VNID (tables 0/20/25 set it; 50/90/100/111 tunnel it) |
| DST_VNID | reg1[0..31] | destination VNID (tables 60, 70)                          |
| OUT_PORT | reg2[0..31] | output ofport, used by table 80's output:NXM_NX_REG2[]    |
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegField:
    """Bits lo..hi of NXM register `reg` (both inclusive)."""

    reg: int
    lo: int
    hi: int
    name: str

    def __post_init__(self) -> None:
        if not 0 <= self.reg <= 15:
            raise ValueError(f"{self.name}: register {self.reg} outside reg0..reg15")
        if not 0 <= self.lo <= self.hi <= 31:
            raise ValueError(f"{self.name}: bits {self.lo}..{self.hi} outside 0..31")

    @property
    def n_bits(self) -> int:
        return self.hi - self.lo + 1

    @property
    def whole(self) -> bool:
        return self.lo == 0 and self.hi == 31

    @property
    def oxm_name(self) -> str:
        """The os-ken / ovs-ofctl field name: reg0."""
        return f"reg{self.reg}"

    @property
    def nxm(self) -> str:
        """ovs-ofctl's NXM notation, as openshift-sdn writes it: NXM_NX_REG0[]."""
        bits = "" if self.whole else f"{self.lo}..{self.hi}"
        return f"NXM_NX_REG{self.reg}[{bits}]"

    def check(self, value: int) -> int:
        if not 0 <= value < (1 << self.n_bits):
            raise ValueError(f"{self.name}: {value} does not fit in {self.n_bits} bits")
        return value


SRC_VNID = RegField(0, 0, 31, "SRC_VNID")
DST_VNID = RegField(1, 0, 31, "DST_VNID")
OUT_PORT = RegField(2, 0, 31, "OUT_PORT")
