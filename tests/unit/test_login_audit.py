"""The login audit's whitelist and decisions (CTS best practice: SMN_Topic, RegionName, IP)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chalicelib.delivery import MemoryTopics
from chalicelib.login_audit import LoginAudit, LoginAuditConfig, Whitelist, alarm_text

TOPIC = "arn:aws:sns:eu-west-1:123456789012:cts_test"
WHITELIST = "203.0.113.7, 198.51.100.0/24,2001:db8::/32 ,::1"


def sign_in(**overrides: Any) -> dict[str, Any]:
    base = {"trace_id": "t", "service_type": "IAM", "trace_name": "login", "source_ip": "10.0.0.1"}
    base.update(overrides)
    return base


def audit(ip: str = WHITELIST, topic: str = TOPIC) -> tuple[LoginAudit, MemoryTopics]:
    topics = MemoryTopics()
    env = {"SMN_Topic": topic, "RegionName": "eu-west-1", "IP": ip}
    return LoginAudit(LoginAuditConfig.from_env(env, "us-east-1"), topics), topics


def alarms(ip: str, **trace: Any) -> list[str]:
    planner, topics = audit(ip)
    for send in planner.plan("p", sign_in(**trace)):
        send.send()
    return [message for _, message, _ in topics.published]


class TestWhitelist:
    @pytest.mark.parametrize(
        ("source", "allowed"),
        [
            ("203.0.113.7", True),
            ("203.0.113.8", False),
            ("198.51.100.0", True),  # first and last address of the block
            ("198.51.100.255", True),
            ("198.51.101.0", False),
            ("2001:db8::1", True),
            ("2001:0db8:ffff::", True),
            ("2001:db9::", False),
            ("::1", True),
            ("::ffff:198.51.100.9", True),  # IPv4-mapped IPv6 is its IPv4 address
            ("::ffff:10.0.0.1", False),
            ("AWS Internal", False),
            ("", False),
        ],
    )
    def test_addresses_and_blocks_v4_and_v6(self, source: str, allowed: bool) -> None:
        assert Whitelist.parse(WHITELIST).allows(source) is allowed

    def test_invalid_entries_are_reported_and_left_out(self) -> None:
        parsed = Whitelist.parse("10.0.0.0/8, 300.1.1.1, nonsense, 10.1.0.0/33,, 2001:db8::/129")
        assert [str(n) for n in parsed.networks] == ["10.0.0.0/8"]
        assert parsed.invalid == ("300.1.1.1", "nonsense", "10.1.0.0/33", "2001:db8::/129")

    def test_a_block_with_host_bits_is_taken_as_its_network(self) -> None:
        parsed = Whitelist.parse("10.1.2.3/16")
        assert parsed.allows("10.1.200.1")
        assert parsed.corrected == ("10.1.2.3/16 -> 10.1.0.0/16",)

    def test_an_empty_whitelist_allows_nothing(self) -> None:
        assert not Whitelist.parse("").allows("127.0.0.1")

    def test_problems_are_logged_once_at_start(self, caplog: pytest.LogCaptureFixture) -> None:
        env = {"SMN_Topic": TOPIC, "IP": "10.0.0.1/8, bogus"}
        with caplog.at_level(logging.INFO, logger="opencts.login_audit"):
            LoginAuditConfig.from_env(env, "us-east-1").log_problems()
            LoginAuditConfig.from_env({}, "us-east-1").log_problems()
        text = caplog.text
        assert "left out of the whitelist: bogus" in text
        assert "10.0.0.1/8 -> 10.0.0.0/8" in text
        assert "login audit is off: SMN_Topic is not set" in text


class TestDecisions:
    def test_a_login_from_outside_raises_the_alarm_of_the_best_practice(self) -> None:
        assert alarms(WHITELIST, source_ip="10.65.56.139") == [
            "Illegal operation[IP:10.65.56.139, Action:login]"
        ]

    def test_a_logout_too(self) -> None:
        assert alarms(WHITELIST, trace_name="logout") == [alarm_text("10.0.0.1", "logout")]

    def test_a_whitelisted_address_raises_nothing(self) -> None:
        assert alarms(WHITELIST, source_ip="198.51.100.20") == []

    def test_other_operations_and_services_are_not_audited(self) -> None:
        assert alarms(WHITELIST, trace_name="createUser") == []
        assert alarms(WHITELIST, service_type="ECS") == []
        assert alarms(WHITELIST, trace_name="Login") == []

    def test_a_missing_source_ip_is_an_alarm_with_ip_unknown(self) -> None:
        assert alarms(WHITELIST, source_ip="") == [alarm_text("unknown", "login")]
        assert alarms(WHITELIST, source_ip=None) == [alarm_text("unknown", "login")]

    def test_a_source_that_is_not_an_address_is_shown_as_written(self) -> None:
        assert alarms(WHITELIST, source_ip="AWS Internal") == [alarm_text("AWS Internal", "login")]

    def test_without_a_topic_the_audit_is_off(self) -> None:
        planner, _ = audit(topic="")
        assert planner.plan("p", sign_in()) == []

    def test_the_region_defaults_to_the_functions_region(self) -> None:
        assert LoginAuditConfig.from_env({"SMN_Topic": TOPIC}, "ap-southeast-1").region == (
            "ap-southeast-1"
        )
        assert LoginAuditConfig.from_env({"RegionName": " eu-west-1 "}, "x").region == "eu-west-1"
