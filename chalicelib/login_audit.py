"""The login audit, CTS's best practice "Auditing and Analyzing Logins and Logouts" as shipped:
IAM `login`/`logout` traces whose source IP is outside a whitelist raise
`Illegal operation[IP:<ip>, Action:<action>]` on a topic.

Configuration is the best practice's own environment variables:
- `SMN_Topic`: the topic (an SNS topic ARN) the alarm goes to. Unset: the audit is off (said once
  in the log at start-up), and login traces pass without a message.
- `RegionName`: the topic's region (default: the function's region).
- `IP`: the whitelist, comma-separated addresses and CIDR blocks, IPv4 and IPv6
  (`203.0.113.7, 198.51.100.0/24, 2001:db8::/32`). An IPv4-mapped IPv6 source (`::ffff:a.b.c.d`)
  is compared as its IPv4 address.

Decisions where the best practice is silent (docs/OPERATIONS.md, "Login audit"):
- An entry of `IP` that is not an address or a network is an error, logged at start-up with every
  bad entry; it is left out and the valid entries still apply, so a typo can only raise more
  alarms, never silence one (the whitelist fails closed). An empty `IP` whitelists nothing.
- A network with host bits set (`10.0.0.1/24`) is taken as its network (`10.0.0.0/24`), as the
  console's CIDR fields do, and the correction is logged.
- A trace without a source IP raises the alarm with `IP:unknown`; a source that is not an address
  (CloudTrail writes "AWS Internal" or a service host name) is never whitelisted and is shown as
  written.
- Only IAM traces named exactly `login` or `logout` are audited, whatever their outcome: a failed
  sign-in from an unknown address is worth an alarm too.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.delivery import Send, Topics

logger = logging.getLogger("opencts.login_audit")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

AUDIT_KEY = "login-audit"
AUDITED_SERVICE = "IAM"
AUDITED_ACTIONS = frozenset({"login", "logout"})
UNKNOWN_IP = "unknown"


def alarm_text(ip: str, action: str) -> str:
    return f"Illegal operation[IP:{ip}, Action:{action}]"


@dataclass(frozen=True)
class Whitelist:
    networks: tuple[Network, ...]
    invalid: tuple[str, ...] = ()
    corrected: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Whitelist:
        networks: list[Network] = []
        invalid: list[str] = []
        corrected: list[str] = []
        for raw in text.split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                invalid.append(entry)
                continue
            if "/" in entry and not _is_strict_network(entry):
                corrected.append(f"{entry} -> {network}")
            networks.append(network)
        return cls(tuple(networks), tuple(invalid), tuple(corrected))

    def allows(self, source_ip: str) -> bool:
        address = _address(source_ip)
        if address is None:
            return False
        return any(
            address.version == network.version and address in network for network in self.networks
        )


def _is_strict_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry)
    except ValueError:
        return False
    return True


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class LoginAuditConfig:
    topic_arn: str
    region: str
    whitelist: Whitelist

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_region: str) -> LoginAuditConfig:
        return cls(
            topic_arn=env.get("SMN_Topic", "").strip(),
            region=env.get("RegionName", "").strip() or default_region,
            whitelist=Whitelist.parse(env.get("IP", "")),
        )

    def log_problems(self) -> None:
        """Said once, when the function's container starts."""
        if not self.topic_arn:
            logger.info("login audit is off: SMN_Topic is not set")
        if self.whitelist.invalid:
            logger.error(
                "login audit: IP holds entries that are neither addresses nor CIDR blocks, "
                "left out of the whitelist: %s",
                ", ".join(self.whitelist.invalid),
            )
        if self.whitelist.corrected:
            logger.warning(
                "login audit: IP networks with host bits set were taken as their networks: %s",
                ", ".join(self.whitelist.corrected),
            )


@dataclass
class LoginAudit:
    """A planner for `delivery.StreamDelivery`: one alarm for each audited trace from outside
    the whitelist."""

    config: LoginAuditConfig
    topics: Topics

    def plan(self, project_id: str, trace: Mapping[str, Any]) -> list[Send]:
        if not self.config.topic_arn:
            return []
        action = trace.get("trace_name")
        if trace.get("service_type") != AUDITED_SERVICE or action not in AUDITED_ACTIONS:
            return []
        source_ip = str(trace.get("source_ip") or "").strip()
        if source_ip and self.config.whitelist.allows(source_ip):
            return []
        text = alarm_text(source_ip or UNKNOWN_IP, str(action))
        topic = self.config.topic_arn
        return [Send(AUDIT_KEY, topic, lambda: self.topics.publish(topic, text, {}))]
