"""dnsNames followed by TTL (`controller.dns.EgressDns`): a scripted resolver, a fake clock."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from controller.dns import DEFAULT_TTL, FIRST_RETRY, DnsFailure, EgressDns


class Answers:
    """A resolver double: name -> (addresses, TTL), or a failure; counts its queries."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[tuple[IPv4Address, ...], float] | None] = {}
        self.asked: list[str] = []

    def set(self, name: str, *addresses: str, ttl: float = 60) -> None:
        self.answers[name] = (tuple(sorted(IPv4Address(a) for a in addresses)), ttl)

    def fail(self, name: str) -> None:
        self.answers[name] = None

    def __call__(self, name: str) -> tuple[tuple[IPv4Address, ...], float]:
        self.asked.append(name)
        answer = self.answers.get(name)
        if answer is None:
            raise DnsFailure(f"dnsName {name} did not resolve: NXDOMAIN")
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ips(*texts: str) -> tuple[IPv4Address, ...]:
    return tuple(IPv4Address(t) for t in texts)


def test_a_name_is_asked_again_when_its_ttl_runs_out(answers: Answers, clock: Clock) -> None:
    dns = EgressDns(answers, clock)
    answers.set("a.example", "192.0.2.1", ttl=30)
    assert dns.follow(["a.example"]) is True
    assert dns.lookup("a.example") == ()  # nothing asked yet: the compiler never waits
    assert dns.refresh() == ["a.example"] and dns.lookup("a.example") == ips("192.0.2.1")
    assert dns.next_due() == 1030.0
    answers.set("a.example", "192.0.2.2", "192.0.2.1", ttl=30)
    clock.now = 1029.0
    assert dns.refresh() == [] and answers.asked == ["a.example"]  # not yet due
    clock.now = 1030.0
    assert dns.refresh() == ["a.example"]
    assert dns.lookup("a.example") == ips("192.0.2.1", "192.0.2.2")
    clock.now = 1060.0
    assert dns.refresh() == [] and len(answers.asked) == 3  # the same answer: no change


def test_a_failure_keeps_the_last_good_answer_and_backs_off(answers: Answers,
                                                             clock: Clock) -> None:
    dns = EgressDns(answers, clock)
    answers.set("a.example", "192.0.2.1", ttl=30)
    dns.follow(["a.example"])
    dns.refresh()
    answers.fail("a.example")
    waits = []
    for _ in range(12):
        clock.now = dns.next_due() or 0
        start = clock.now
        assert dns.refresh() == []
        assert dns.lookup("a.example") == ips("192.0.2.1")
        waits.append((dns.next_due() or 0) - start)
    assert waits[:3] == [FIRST_RETRY, 2 * FIRST_RETRY, 4 * FIRST_RETRY]
    assert max(waits) == waits[-1] == DEFAULT_TTL  # 3.11's wait after a failure, the cap
    answers.set("a.example", "192.0.2.9", ttl=30)
    clock.now = dns.next_due() or 0
    assert dns.refresh() == ["a.example"] and dns.next_due() == clock.now + 30


def test_a_name_that_never_resolved_is_retried(answers: Answers, clock: Clock) -> None:
    dns = EgressDns(answers, clock)
    dns.follow(["late.example"])
    assert dns.refresh() == [] and dns.next_due() == clock.now + FIRST_RETRY
    answers.set("late.example", "192.0.2.7")
    clock.now += FIRST_RETRY
    assert dns.refresh() == ["late.example"]


def test_a_zero_ttl_waits_a_second(answers: Answers, clock: Clock) -> None:
    dns = EgressDns(answers, clock)
    answers.set("zero.example", "192.0.2.1", ttl=0)
    dns.follow(["zero.example"])
    dns.refresh()
    assert dns.next_due() == clock.now + 1.0


def test_names_the_topology_no_longer_uses_are_forgotten(answers: Answers,
                                                         clock: Clock) -> None:
    dns = EgressDns(answers, clock)
    answers.set("a.example", "192.0.2.1")
    dns.follow(["a.example"])
    dns.refresh()
    assert dns.follow(["a.example"]) is False  # nothing new
    dns.follow([])
    assert dns.lookup("a.example") == () and dns.next_due() is None
