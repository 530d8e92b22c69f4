"""The demo: an hour of a small team's operations, reported by `opencts demo`.

Realistic on purpose: several services (ECS, EVS, VPC, IAM, CTS, OBS), two people and an
automation agency, every rating (a failed operation is a `warning` with its code and a message
saying why), system actions without a user or source IP, console logins, and request and response
bodies shaped like the services' own. Everything but ids and times is fixed, so the counts the
demo prints, and the tests check, never change.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any


def iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(domain: str, name: str, user_id: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": user_id,
        "name": name,
        "user_name": name,
        "domain": {"id": domain, "name": "acme"},
        "account_id": domain,
        "access_key_id": key,
        "principal_urn": f"iam::{domain}:user:{name}",
        "principal_id": user_id,
        "principal_is_root_user": "false",
        "type": "User",
        **extra,
    }


def _op(
    minutes_ago: int,
    service_type: str,
    resource_type: str,
    trace_name: str,
    user: dict[str, Any],
    source_ip: str,
    code: str,
    **fields: Any,
) -> tuple[int, dict[str, Any]]:
    trace = {
        "trace_name": trace_name,
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "service_type": service_type,
        "resource_type": resource_type,
        "user": user,
        "source_ip": source_ip,
        "code": code,
        **fields,
    }
    return minutes_ago, trace


def demo_traces(now: int, domain: str) -> list[dict[str, Any]]:
    """25 traces over the hour before `now`, made by users of `domain`."""
    alice = _user(domain, "alice", "0a1b2c3d4e5f40a1b2c3d4e5f6a7b8c9", "HSTAALICE7Q2LM0EXAMPLE")
    bob = _user(domain, "bob", "1f2e3d4c5b6a47988a7b6c5d4e3f2a1b", "HSTABOB3K9WP1Z0EXAMPLE")
    agency = _user(
        domain,
        "ops-automation",
        "7c6b5a4938274c1d9e8f7a6b5c4d3e2f",
        "HSTAOPSAUTO5X8N2EXAMPLE",
        type="AssumedAgency",
        principal_urn=f"sts::{domain}:assumed-agency:ops-automation/ci-runner",
        invoked_by=["service.FunctionGraph"],
        session_context={
            "attributes": {"created_at": iso(now - 50 * 60_000), "mfa_authenticated": "false"}
        },
    )
    office, home, ci = "203.0.113.24", "198.51.100.77", "192.0.2.15"
    web_1 = "6e5f0c2a-41b7-4a5e-9c3d-2f1a0b9c8d7e"
    web_2 = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    volume = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
    vpc = "4f3e2d1c-0b9a-4876-9543-21fedcba9876"
    bucket = "acme-build-artifacts"
    ecs = {"api_version": "v1.1", "endpoint": "ecs.ap-southeast-1.myhuaweicloud.com"}
    browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    open_ssh = {
        "direction": "ingress",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
        "remote_ip_prefix": "0.0.0.0/0",
    }
    specs = [
        _op(
            55,
            "IAM",
            "user",
            "login",
            alice,
            office,
            "200",
            trace_type="ConsoleAction",
            resource_name="alice",
            resource_id=alice["id"],
            user_agent=browser,
            message={"login": "success", "mfa": "true"},
        ),
        _op(
            53,
            "ECS",
            "ecs",
            "createServer",
            alice,
            office,
            "202",
            trace_type="ConsoleAction",
            resource_name="web-01",
            resource_id=web_1,
            **ecs,
            request={
                "server": {
                    "name": "web-01",
                    "flavorRef": "c7.large.2",
                    "imageRef": "img-ubuntu-22.04",
                    "vpcid": vpc,
                    "root_volume": {"volumetype": "GPSSD", "size": 40},
                }
            },
            response={"job_id": "ff8080828e1a4c7b9f01000000000001", "serverIds": [web_1]},
        ),
        _op(
            51,
            "EVS",
            "volume",
            "createVolume",
            alice,
            office,
            "202",
            resource_name="web-01-data",
            resource_id=volume,
            api_version="v2",
            request={
                "volume": {
                    "name": "web-01-data",
                    "size": 100,
                    "volume_type": "SSD",
                    "availability_zone": "ap-southeast-1a",
                }
            },
            response={"job_id": "ff8080828e1a4c7b9f01000000000002"},
        ),
        _op(
            50,
            "EVS",
            "volume",
            "createVolume",
            bob,
            home,
            "400",
            trace_rating="warning",
            resource_name="scratch",
            api_version="v2",
            request={"volume": {"name": "scratch", "size": 0, "volume_type": "SAS"}},
            response={"error": {"code": "EVS.2024", "message": "Invalid volume size."}},
            message="Failed to create volume 'scratch': a size of 0 GiB is invalid; "
            "a volume must be between 10 and 32768 GiB",
        ),
        _op(
            48,
            "EVS",
            "volume",
            "attachVolume",
            alice,
            office,
            "202",
            resource_name="web-01-data",
            resource_id=volume,
            api_version="v2.1",
            request={"volumeAttachment": {"volumeId": volume, "device": "/dev/vdb"}},
            response={"job_id": "ff8080828e1a4c7b9f01000000000003"},
        ),
        _op(
            46,
            "VPC",
            "vpc",
            "createVpc",
            bob,
            home,
            "200",
            resource_name="staging",
            resource_id=vpc,
            api_version="v1",
            request={"vpc": {"name": "staging", "cidr": "10.20.0.0/16"}},
            response={"vpc": {"id": vpc, "status": "CREATING"}},
        ),
        _op(
            44,
            "VPC",
            "securityGroupRule",
            "createSecurityGroupRule",
            bob,
            home,
            "200",
            trace_type="ConsoleAction",
            trace_rating="incident",
            resource_name="sg-staging",
            resource_id="sgr-5d1c8a2e",
            api_version="v1",
            request={"security_group_rule": open_ssh},
            response={"security_group_rule": {"id": "sgr-5d1c8a2e", **open_ssh}},
            message="SSH (22/tcp) opened to the whole internet on sg-staging",
        ),
        _op(
            42,
            "ECS",
            "ecs",
            "updateServer",
            alice,
            office,
            "200",
            resource_name="web-01",
            resource_id=web_1,
            **ecs,
            request={"server": {"name": "web-01", "description": "public web tier"}},
            response={"server": {"id": web_1, "name": "web-01"}},
        ),
        _op(
            40,
            "OBS",
            "bucket",
            "createBucket",
            agency,
            ci,
            "200",
            resource_name=bucket,
            resource_id=bucket,
            user_agent="obsutil/5.5.12",
            request={"bucket": bucket, "storage_class": "STANDARD", "acl": "private"},
        ),
        _op(
            38,
            "OBS",
            "bucket",
            "setBucketPolicy",
            agency,
            ci,
            "204",
            resource_name=bucket,
            resource_id=bucket,
            user_agent="obsutil/5.5.12",
            request={
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": ["*"],
                        "Condition": {"Bool": {"SecureTransport": "false"}},
                    }
                ]
            },
        ),
        _op(
            36,
            "CTS",
            "tracker",
            "createTracker",
            agency,
            ci,
            "201",
            resource_name="system",
            resource_id="system",
            api_version="v3",
            request={
                "tracker_type": "system",
                "tracker_name": "system",
                "obs_info": {
                    "bucket_name": "acme-audit-logs",
                    "file_prefix_name": "cts",
                    "compress_type": "gzip",
                },
            },
            response={"id": "d1b7c1f4-6a55-4c63-9c0e-000000000001", "status": "enabled"},
        ),
        _op(
            34,
            "ECS",
            "ecs",
            "createServer",
            alice,
            office,
            "202",
            resource_name="web-02",
            resource_id=web_2,
            **ecs,
            request={
                "server": {
                    "name": "web-02",
                    "flavorRef": "c7.large.2",
                    "imageRef": "img-ubuntu-22.04",
                    "vpcid": vpc,
                }
            },
            response={"job_id": "ff8080828e1a4c7b9f01000000000004", "serverIds": [web_2]},
        ),
        _op(
            32,
            "IAM",
            "user",
            "login",
            bob,
            home,
            "200",
            trace_type="ConsoleAction",
            resource_name="bob",
            resource_id=bob["id"],
            user_agent=browser,
            message={"login": "success", "mfa": "false"},
        ),
        _op(
            30,
            "ECS",
            "ecs",
            "stopServer",
            agency,
            ci,
            "202",
            resource_name="batch-07",
            resource_id="0d9c8b7a-6f5e-4d3c-b2a1-0f9e8d7c6b5a",
            **ecs,
            request={"os-stop": {"type": "SOFT"}},
            response={"job_id": "ff8080828e1a4c7b9f01000000000005"},
        ),
        _op(
            28,
            "EVS",
            "snapshot",
            "createSnapshot",
            {},
            "",
            "202",
            trace_type="SystemAction",
            resource_name="web-01-data-autobackup",
            resource_id="snap-3e2d1c0b",
            message="Backup policy 'daily-7' took its scheduled snapshot of web-01-data",
        ),
        _op(
            26,
            "ECS",
            "ecs",
            "rebootServer",
            alice,
            office,
            "202",
            trace_type="ConsoleAction",
            resource_name="web-01",
            resource_id=web_1,
            **ecs,
            request={"reboot": {"type": "SOFT"}},
            response={"job_id": "ff8080828e1a4c7b9f01000000000006"},
        ),
        _op(
            24,
            "ECS",
            "ecs",
            "deleteServer",
            bob,
            home,
            "409",
            trace_rating="warning",
            resource_name="web-01",
            resource_id=web_1,
            **ecs,
            request={"servers": [{"id": web_1}], "delete_volume": False},
            response={"error": {"code": "Ecs.0612", "message": "The server is locked."}},
            message="Server web-01 is locked against deletion; unlock it first",
        ),
        _op(
            22,
            "IAM",
            "user",
            "createUser",
            alice,
            office,
            "201",
            resource_name="carol",
            resource_id="5a4b3c2d1e0f4a9b8c7d6e5f4a3b2c1d",
            api_version="v3.0",
            request={"user": {"name": "carol", "enabled": True, "pwd_status": True}},
            response={"user": {"id": "5a4b3c2d1e0f4a9b8c7d6e5f4a3b2c1d", "name": "carol"}},
        ),
        _op(
            20,
            "OBS",
            "object",
            "deleteObject",
            {},
            "",
            "204",
            trace_type="SystemAction",
            resource_name=f"{bucket}/scratch/build-1041.zip",
            message="Lifecycle rule 'expire-scratch-7d' expired the object",
        ),
        _op(
            18,
            "CTS",
            "notification",
            "createNotification",
            alice,
            office,
            "201",
            trace_type="ConsoleAction",
            resource_name="sg-changes",
            api_version="v3",
            request={
                "notification_name": "sg-changes",
                "operation_type": "customized",
                "operations": [
                    {
                        "service_type": "VPC",
                        "resource_type": "securityGroupRule",
                        "trace_names": ["createSecurityGroupRule"],
                    }
                ],
            },
            response={"notification_id": "a3f1c9d2-7b1e-4e0a-8c55-000000000001"},
        ),
        _op(
            15,
            "VPC",
            "securityGroupRule",
            "deleteSecurityGroupRule",
            agency,
            ci,
            "204",
            resource_name="sg-staging",
            resource_id="sgr-5d1c8a2e",
            api_version="v1",
            message="Auto-remediation removed a rule opening 22/tcp to 0.0.0.0/0",
        ),
        _op(
            12,
            "ECS",
            "ecs",
            "listServers",
            bob,
            home,
            "200",
            read_only=True,
            **ecs,
            response={"count": 3},
        ),
        _op(
            9,
            "IAM",
            "user",
            "login",
            bob,
            "185.220.101.4",
            "401",
            trace_type="ConsoleAction",
            trace_rating="warning",
            resource_name="bob",
            resource_id=bob["id"],
            message="Login failed: wrong password (third attempt in five minutes)",
        ),
        _op(
            6,
            "EVS",
            "volume",
            "extendVolume",
            agency,
            ci,
            "202",
            resource_name="web-01-data",
            resource_id=volume,
            api_version="v2.1",
            request={"os-extend": {"new_size": 200}},
        ),
        _op(
            3,
            "IAM",
            "user",
            "logout",
            alice,
            office,
            "200",
            trace_type="ConsoleAction",
            resource_name="alice",
            resource_id=alice["id"],
            user_agent=browser,
        ),
    ]
    traces = []
    for minutes_ago, trace in specs:
        trace["time"] = now - minutes_ago * 60_000
        trace["request_id"] = uuid.uuid4().hex
        traces.append(trace)
    return traces
