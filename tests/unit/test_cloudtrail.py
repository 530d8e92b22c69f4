"""CloudTrail events delivered by EventBridge become CTS traces (chalicelib/cloudtrail.py).

The fixtures in tests/fixtures/cloudtrail/ are EventBridge envelopes around CloudTrail records
modelled on the samples of the AWS CloudTrail and EventBridge user guides. Every expected value
below is written out by hand from the mapping rules, never computed with the converter's helpers.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.cloudtrail import (
    SUPPORTED_DETAIL_TYPES,
    UnsupportedEvent,
    convert_event,
    convert_record,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cloudtrail"

TRACE_NAME_RE = re.compile(r"^[A-Za-z][0-9A-Za-z._-]{0,63}$")
TRACE_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SERVICE_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
CTS_TRACE_FIELDS = {
    "trace_id", "trace_name", "trace_rating", "trace_type", "time", "user", "service_type",
    "resource_type", "resource_id", "resource_name", "source_ip", "request", "response", "code",
    "api_version", "message", "request_id", "location_info", "endpoint", "resource_url",
    "enterprise_project_id", "resource_account_id", "read_only", "operation_id", "user_agent",
    "content_length", "total_time",
}
USER_STRING_FIELDS = {
    "id", "name", "user_name", "account_id", "access_key_id", "principal_urn", "principal_id",
    "principal_is_root_user", "type",
}
BROWSER_MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/67.0.3396.99 Safari/537.36"
)
BROWSER_WINDOWS_FIREFOX = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:102.0) Gecko/20100101 Firefox/102.0"
)
S3_CONSOLE_AGENT = (
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 "
    "Linux/5.10.178-162.673.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.372-b08 "
    "java/1.8.0_372 vendor/Oracle_Corporation cfg/retry-mode/standard]"
)

# The whole trace except request/response (checked by round trip below), per fixture.
EXPECTED: dict[str, dict[str, Any]] = {
    "ec2_run_instances_iam_user.json": {
        "trace_id": "6f1c1f3a-2d4b-4c8e-9a7b-0e1d2c3b4a59",
        "trace_name": "RunInstances",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "time": 1678872161000,
        "user": {
            "id": "AIDAJ45Q7YFFAREXAMPLE",
            "name": "Mateo",
            "user_name": "Mateo",
            "domain": {"id": "123456789012"},
            "account_id": "123456789012",
            "access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "principal_urn": "arn:aws:iam::123456789012:user/Mateo",
            "principal_id": "AIDAJ45Q7YFFAREXAMPLE",
            "principal_is_root_user": "false",
            "type": "IAMUser",
        },
        "service_type": "EC2",
        # No `resources`: the new instance is named only in the response.
        "resource_type": "instance",
        "resource_id": "i-0a1b2c3d4e5f67890",
        "resource_name": "i-0a1b2c3d4e5f67890",
        "source_ip": "198.51.100.25",
        "code": "200",
        "api_version": "1.08",
        "request_id": "d52d8fd5-2a5c-4e1b-9d0e-3f4a5b6c7d8e",
        "resource_account_id": "123456789012",
        "read_only": False,
        "user_agent": (
            "aws-cli/2.11.2 Python/3.11.2 Linux/5.15.0-1031-aws exe/x86_64.ubuntu.22 "
            "prompt/off command/ec2.run-instances"
        ),
    },
    "ec2_terminate_instances_unauthorized.json": {
        "trace_id": "c5f2d6e7-8a9b-4c0d-9e1f-2a3b4c5d6e7f",
        "trace_name": "TerminateInstances",
        "trace_rating": "warning",
        "trace_type": "ApiCall",
        "time": 1678873267000,
        "user": {
            "id": "AIDACKCEVSQ6C2EXAMPLE",
            "name": "Zhang",
            "user_name": "Zhang",
            "domain": {"id": "123456789012"},
            "account_id": "123456789012",
            "access_key_id": "AKIAI44QH8DHBEXAMPLE",
            "principal_urn": "arn:aws:iam::123456789012:user/Zhang",
            "principal_id": "AIDACKCEVSQ6C2EXAMPLE",
            "principal_is_root_user": "false",
            "type": "IAMUser",
        },
        "service_type": "EC2",
        "resource_type": "instance",
        "resource_id": "i-0a1b2c3d4e5f67890",
        "resource_name": "i-0a1b2c3d4e5f67890",
        "source_ip": "203.0.113.64",
        "code": "Client.UnauthorizedOperation",
        "api_version": "1.08",
        "message": (
            "You are not authorized to perform this operation. Encoded authorization failure "
            "message: 4GIOHlTkIaWHQD0Q0m6XSnuUMCm-abPqqZ3EXAMPLE"
        ),
        "request_id": "0e8f7c6d-5b4a-4392-8170-6f5e4d3c2b1a",
        "resource_account_id": "123456789012",
        "read_only": False,
        "user_agent": (
            "aws-cli/2.11.2 Python/3.11.2 Darwin/22.3.0 exe/x86_64 prompt/off "
            "command/ec2.terminate-instances"
        ),
    },
    "s3_create_bucket_iam_user.json": {
        "trace_id": "24ba271e-d595-4e66-a7fd-9c16cbf8abae",
        "trace_name": "CreateBucket",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "time": 1683015292000,
        "user": {
            "id": "AIDAJ45Q7YFFAREXAMPLE",
            "name": "Alice",
            "user_name": "Alice",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "access_key_id": "ASIAIOSFODNN7EXAMPLE",
            "principal_urn": "arn:aws:iam::111122223333:user/Alice",
            "principal_id": "AIDAJ45Q7YFFAREXAMPLE",
            "principal_is_root_user": "false",
            "type": "IAMUser",
            "session_context": {
                "attributes": {"created_at": "2023-05-02T07:58:40Z", "mfa_authenticated": "false"}
            },
        },
        "service_type": "S3",
        "resource_type": "bucket",
        "resource_id": "amzn-s3-demo-bucket1",
        "resource_name": "amzn-s3-demo-bucket1",
        "source_ip": "192.0.2.17",
        "code": "200",
        "api_version": "1.08",
        "request_id": "9D767BCC3658F3E1",
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": S3_CONSOLE_AGENT,
    },
    "s3_put_bucket_policy_assumed_role.json": {
        "trace_id": "aa8b4f3e-5c1d-4e2f-9a6b-7c8d9e0f1a2b",
        "trace_name": "PutBucketPolicy",
        "trace_rating": "normal",
        # sessionCredentialFromConsole is "true": still an API call.
        "trace_type": "ApiCall",
        "time": 1683015613000,
        "user": {
            "id": "AROA123456789EXAMPLE:Anaya",
            "name": "Anaya",
            "user_name": "AdminRole",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "access_key_id": "ASIAI44QH8DHBEXAMPLE",
            "principal_urn": "arn:aws:sts::111122223333:assumed-role/AdminRole/Anaya",
            "principal_id": "AROA123456789EXAMPLE:Anaya",
            "principal_is_root_user": "false",
            "type": "AssumedRole",
            "session_context": {
                "attributes": {"created_at": "2023-05-02T08:11:06Z", "mfa_authenticated": "true"}
            },
        },
        "service_type": "S3",
        "resource_type": "bucket",
        "resource_id": "arn:aws:s3:::amzn-s3-demo-bucket1",
        "resource_name": "amzn-s3-demo-bucket1",
        "source_ip": "192.0.2.17",
        "code": "200",
        "api_version": "1.08",
        "request_id": "A6A7D3D5B2F1C0E9",
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": S3_CONSOLE_AGENT,
    },
    "iam_create_user_root.json": {
        "trace_id": "4f5e6d7c-8b9a-4a0b-9c1d-2e3f4a5b6c7d",
        "trace_name": "CreateUser",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "time": 1686580277000,
        "user": {
            "id": "111122223333",
            "name": "root",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "access_key_id": "ASIAIOSFODNN7EXAMPLE",
            "principal_urn": "arn:aws:iam::111122223333:root",
            "principal_id": "111122223333",
            "principal_is_root_user": "true",
            "type": "Root",
            "session_context": {
                "attributes": {"created_at": "2023-06-12T14:30:01Z", "mfa_authenticated": "true"}
            },
        },
        "service_type": "IAM",
        "resource_type": "user",
        "resource_id": "Bob",
        "resource_name": "Bob",
        "source_ip": "203.0.113.10",
        "code": "200",
        "api_version": "1.08",
        "request_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": "AWS Internal",
    },
    "sts_assume_role_aws_service.json": {
        "trace_id": "d8c7b6a5-9f8e-4d7c-a6b5-4c3d2e1f0a9b",
        "trace_name": "AssumeRole",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "time": 1672808538000,
        "user": {
            "name": "ec2.amazonaws.com",
            "principal_is_root_user": "false",
            "type": "AWSService",
            "invoked_by": ["ec2.amazonaws.com"],
        },
        "service_type": "STS",
        "resource_type": "role",
        "resource_id": "arn:aws:iam::111122223333:role/EC2-S3-ReadOnly",
        "resource_name": "EC2-S3-ReadOnly",
        "source_ip": "ec2.amazonaws.com",
        "code": "200",
        "api_version": "1.08",
        "request_id": "3b1a2c4d-5e6f-47a8-9b0c-1d2e3f4a5b6c",
        "resource_account_id": "111122223333",
        "read_only": True,
        "user_agent": "ec2.amazonaws.com",
    },
    "signin_console_login_success_mfa.json": {
        "trace_id": "fed06f42-cb12-4764-8c69-121063dc79b9",
        "trace_name": "login",
        "trace_rating": "normal",
        "trace_type": "ConsoleAction",
        "time": 1668097474000,
        "user": {
            "id": "AIDACKCEVSQ6C2EXAMPLE",
            "name": "anaya",
            "user_name": "anaya",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "principal_urn": "arn:aws:iam::111122223333:user/anaya",
            "principal_id": "AIDACKCEVSQ6C2EXAMPLE",
            "principal_is_root_user": "false",
            "type": "IAMUser",
            "session_context": {"attributes": {"mfa_authenticated": "true"}},
        },
        "service_type": "IAM",
        "resource_type": "user",
        "resource_id": "arn:aws:iam::111122223333:user/anaya",
        "resource_name": "anaya",
        "source_ip": "192.0.2.0",
        "code": "200",
        "api_version": "1.08",
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": BROWSER_MAC_CHROME,
    },
    "signin_console_login_failure.json": {
        "trace_id": "d38ce1b3-4575-4cb8-a632-611b8243bfc3",
        "trace_name": "login",
        "trace_rating": "warning",
        "trace_type": "ConsoleAction",
        "time": 1668097622000,
        "user": {
            "id": "AIDACKCEVSQ6C2EXAMPLE",
            "name": "anaya",
            "user_name": "anaya",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "principal_id": "AIDACKCEVSQ6C2EXAMPLE",
            "principal_is_root_user": "false",
            "type": "IAMUser",
            "session_context": {"attributes": {"mfa_authenticated": "false"}},
        },
        "service_type": "IAM",
        "resource_type": "user",
        "resource_name": "anaya",
        "source_ip": "198.51.100.203",
        "code": "Failure",
        "api_version": "1.08",
        "message": "Failed authentication",
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": BROWSER_MAC_CHROME,
    },
    "signin_console_login_root.json": {
        "trace_id": "deb1e1f9-c99b-4612-8e9f-21f93b5d79c0",
        "trace_name": "login",
        "trace_rating": "normal",
        "trace_type": "ConsoleAction",
        "time": 1668097845000,
        "user": {
            "id": "111122223333",
            "name": "root",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "principal_urn": "arn:aws:iam::111122223333:root",
            "principal_id": "111122223333",
            "principal_is_root_user": "true",
            "type": "Root",
            "session_context": {"attributes": {"mfa_authenticated": "true"}},
        },
        "service_type": "IAM",
        "resource_type": "user",
        "resource_id": "arn:aws:iam::111122223333:root",
        "resource_name": "root",
        "source_ip": "192.0.2.0",
        "code": "200",
        "api_version": "1.08",
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.12; rv:62.0) Gecko/20100101 Firefox/62.0"
        ),
    },
    "signin_switch_role.json": {
        "trace_id": "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "trace_name": "login",
        "trace_rating": "normal",
        "trace_type": "ConsoleAction",
        "time": 1689761131000,
        "user": {
            "id": "AROAIN5ATK5U7KEXAMPLE:JohnDoe",
            "name": "JohnDoe",
            "user_name": "ReadOnlyRole",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "principal_urn": "arn:aws:sts::111122223333:assumed-role/ReadOnlyRole/JohnDoe",
            "principal_id": "AROAIN5ATK5U7KEXAMPLE:JohnDoe",
            "principal_is_root_user": "false",
            "type": "AssumedRole",
        },
        "service_type": "IAM",
        "resource_type": "user",
        "resource_id": "arn:aws:sts::111122223333:assumed-role/ReadOnlyRole/JohnDoe",
        "resource_name": "JohnDoe",
        "source_ip": "192.0.2.101",
        "code": "200",
        "api_version": "1.08",
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": BROWSER_WINDOWS_FIREFOX,
    },
    "signin_exit_role.json": {
        "trace_id": "b1c2d3e4-f5a6-4b7c-9d8e-0f1a2b3c4d5e",
        "trace_name": "logout",
        "trace_rating": "normal",
        "trace_type": "ConsoleAction",
        "time": 1689767289000,
        "user": {
            "id": "AROAIN5ATK5U7KEXAMPLE:JohnDoe",
            "name": "JohnDoe",
            "user_name": "ReadOnlyRole",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "principal_urn": "arn:aws:sts::111122223333:assumed-role/ReadOnlyRole/JohnDoe",
            "principal_id": "AROAIN5ATK5U7KEXAMPLE:JohnDoe",
            "principal_is_root_user": "false",
            "type": "AssumedRole",
        },
        "service_type": "IAM",
        "resource_type": "user",
        "resource_id": "arn:aws:sts::111122223333:assumed-role/ReadOnlyRole/JohnDoe",
        "resource_name": "JohnDoe",
        "source_ip": "192.0.2.101",
        "code": "200",
        "api_version": "1.08",
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": BROWSER_WINDOWS_FIREFOX,
    },
    "kms_rotate_key_service_event.json": {
        "trace_id": "a24b3967-ddad-417f-9b22-2332b918db06",
        "trace_name": "RotateKey",
        "trace_rating": "normal",
        "trace_type": "SystemAction",
        "time": 1610588519000,
        "user": {
            "name": "AWS Internal",
            "domain": {"id": "111122223333"},
            "account_id": "111122223333",
            "principal_is_root_user": "false",
            "invoked_by": ["AWS Internal"],
        },
        "service_type": "KMS",
        "resource_type": "key",
        "resource_id": (
            "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ),
        "resource_name": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "source_ip": "AWS Internal",
        "api_version": "1.08",
        "message": '{"keyId":"1234abcd-12ab-34cd-56ef-1234567890ab","rotationType":"AUTOMATIC"}',
        "resource_account_id": "111122223333",
        "read_only": False,
        "user_agent": "AWS Internal",
    },
    "ec2_spot_bid_evicted_service_event.json": {
        "trace_id": "d27a6096-807b-4bd0-8c20-a33a83375054",
        "trace_name": "BidEvictedEvent",
        "trace_rating": "normal",
        "trace_type": "SystemAction",
        "time": 1471386600000,
        "user": {
            "name": "ec2.amazonaws.com",
            "domain": {"id": "123456789012"},
            "account_id": "123456789012",
            "principal_is_root_user": "false",
            "invoked_by": ["ec2.amazonaws.com"],
        },
        "service_type": "EC2",
        "resource_type": "instance",
        "resource_id": "i-1eb2ac8e",
        "resource_name": "i-1eb2ac8e",
        "source_ip": "ec2.amazonaws.com",
        "api_version": "1.05",
        "message": '{"instanceIdSet":["i-1eb2ac8e"]}',
        "resource_account_id": "123456789012",
        "user_agent": "ec2.amazonaws.com",
    },
    "lambda_create_function_iam_user.json": {
        "trace_id": "5f6a7b8c-9d0e-4f1a-b2c3-d4e5f6a7b8c9",
        "trace_name": "CreateFunction20150331",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "time": 1675964212000,
        "user": {
            "id": "AIDAI3EXAMPLEJKXZ6YRW",
            "name": "Saanvi",
            "user_name": "Saanvi",
            "domain": {"id": "123456789012"},
            "account_id": "123456789012",
            "access_key_id": "AKIAI44QH8DHBEXAMPLE",
            "principal_urn": "arn:aws:iam::123456789012:user/Saanvi",
            "principal_id": "AIDAI3EXAMPLEJKXZ6YRW",
            "principal_is_root_user": "false",
            "type": "IAMUser",
        },
        "service_type": "LAMBDA",
        "resource_type": "function",
        "resource_id": "my-function",
        "resource_name": "my-function",
        "source_ip": "192.0.2.44",
        "code": "200",
        "api_version": "1.08",
        "request_id": "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8",
        "resource_account_id": "123456789012",
        "read_only": False,
        "user_agent": (
            "aws-cli/2.9.19 Python/3.9.11 Windows/10 exe/AMD64 prompt/off "
            "command/lambda.create-function"
        ),
    },
    "cloudwatch_put_metric_alarm_assumed_role.json": {
        "trace_id": "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e",
        "trace_name": "PutMetricAlarm",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "time": 1678886400000,
        "user": {
            "id": "AROAJ2UCCR6DPCEXAMPLE:botocore-session-1678886395",
            "name": "botocore-session-1678886395",
            "user_name": "ops-automation",
            "domain": {"id": "123456789012"},
            "account_id": "123456789012",
            "access_key_id": "ASIAJEXAMPLEXEG2JICEA",
            "principal_urn": (
                "arn:aws:sts::123456789012:assumed-role/ops-automation/botocore-session-1678886395"
            ),
            "principal_id": "AROAJ2UCCR6DPCEXAMPLE:botocore-session-1678886395",
            "principal_is_root_user": "false",
            "type": "AssumedRole",
            "session_context": {
                "attributes": {"created_at": "2023-03-15T13:19:55Z", "mfa_authenticated": "false"}
            },
        },
        "service_type": "CLOUDWATCH",
        "resource_type": "alarm",
        "resource_id": "HighCPUUtilization",
        "resource_name": "HighCPUUtilization",
        "source_ip": "3.18.100.42",
        "code": "200",
        "api_version": "1.08",
        "request_id": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
        "resource_account_id": "123456789012",
        "read_only": False,
        "user_agent": (
            "Boto3/1.26.90 md/Botocore#1.29.90 ua/2.0 os/linux#5.10.165-163.661.amzn2.x86_64 "
            "md/arch#x86_64 lang/python#3.9.16 md/pyimpl#CPython exec-env/AWS_Lambda_python3.9 "
            "cfg/retry-mode#legacy Botocore/1.29.90"
        ),
    },
}
FIXTURE_NAMES = sorted(EXPECTED)

# A record exactly as CloudTrail writes it to a log file (CloudTrail User Guide, "Error code and
# message log example"): no EventBridge envelope around it.
LOG_FILE = {
    "Records": [
        {
            "eventVersion": "1.04",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "EX_PRINCIPAL_ID",
                "arn": "arn:aws:iam::123456789012:user/Alice",
                "accountId": "123456789012",
                "accessKeyId": "EXAMPLE_KEY_ID",
                "userName": "Alice",
            },
            "eventTime": "2016-07-14T19:15:45Z",
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "UpdateTrail",
            "awsRegion": "us-east-2",
            "sourceIPAddress": "205.251.233.182",
            "userAgent": "aws-cli/1.10.32 Python/2.7.9 Windows/7 botocore/1.4.22",
            "errorCode": "TrailNotFoundException",
            "errorMessage": "Unknown trail: myTrail2 for the user: 123456789012",
            "requestParameters": {"name": "myTrail2"},
            "responseElements": None,
            "requestID": "5d40662a-49f7-11e6-97e4-d9cb6ff7d6a3",
            "eventID": "b7d4398e-b2f0-4faa-9c76-e2d316a8d67f",
            "eventType": "AwsApiCall",
            "recipientAccountId": "123456789012",
        }
    ]
}


def load(name: str) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return envelope


def api_call(**detail: Any) -> dict[str, Any]:
    """A minimal API call envelope; keyword arguments override or add CloudTrail fields."""
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAJ45Q7YFFAREXAMPLE",
            "arn": "arn:aws:iam::123456789012:user/Alice",
            "accountId": "123456789012",
            "userName": "Alice",
        },
        "eventTime": "2023-01-01T12:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.1",
        "userAgent": "aws-cli/2.11.2",
        "requestParameters": None,
        "responseElements": None,
        "eventID": "0b5d3e1c-7a4f-4e2b-9c8d-1f0e2d3c4b5a",
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    }
    record.update(detail)
    return {
        "version": "0",
        "id": "f0e1d2c3-b4a5-4968-8776-655443322110",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2023-01-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    }


def none_paths(value: Any, path: str = "trace") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in none_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in none_paths(item, f"{path}[{index}]")]
    return []


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


def assert_well_formed(trace: dict[str, Any]) -> None:
    assert none_paths(trace) == []
    assert set(trace) <= CTS_TRACE_FIELDS
    assert "record_time" not in trace
    assert "tracker_name" not in trace
    assert TRACE_NAME_RE.match(trace["trace_name"])
    assert TRACE_ID_RE.match(trace["trace_id"])
    assert SERVICE_TYPE_RE.match(trace["service_type"])
    assert 1 <= len(trace["resource_type"]) <= 128
    assert len(trace["source_ip"]) <= 128
    assert trace["source_ip"] or trace["trace_type"] == "SystemAction"
    assert trace["trace_rating"] in {"normal", "warning", "incident"}
    assert trace["trace_type"] in {"ConsoleAction", "ApiCall", "SystemAction"}
    assert isinstance(trace["time"], int)
    assert not isinstance(trace["time"], bool)
    assert isinstance(trace.get("code", ""), str)
    assert isinstance(trace.get("read_only", False), bool)
    assert all(not CONTROL_RE.search(text) for text in strings_in(trace))
    user = trace["user"]
    assert user or trace["trace_type"] == "SystemAction"
    assert not user or user.get("name") or user.get("id")
    for key, item in user.items():
        if key in USER_STRING_FIELDS:
            assert isinstance(item, str)
            assert item
        elif key == "domain":
            assert set(item) <= {"id", "name"}
            assert all(isinstance(v, str) for v in item.values())
        elif key == "invoked_by":
            assert isinstance(item, list)
            assert all(isinstance(v, str) for v in item)
        else:
            assert key == "session_context"
            assert set(item) == {"attributes"}
            assert set(item["attributes"]) <= {"created_at", "mfa_authenticated"}
            assert all(isinstance(v, str) for v in item["attributes"].values())
    assert user.get("principal_is_root_user", "false") in {"true", "false"}


# --- every fixture ---------------------------------------------------------------------------


def test_there_is_an_expectation_for_every_fixture() -> None:
    # Given the fixture folder / When listing it / Then each file has its expected trace
    on_disk = sorted(path.name for path in FIXTURES.glob("*.json"))
    assert on_disk == FIXTURE_NAMES
    assert len(on_disk) >= 10


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_maps_to_the_expected_trace(name: str) -> None:
    # Given an EventBridge envelope around a CloudTrail record
    envelope = load(name)

    # When it is converted
    trace = convert_event(envelope)

    # Then every field but request/response is exactly the expected one, and nothing else is set
    mapped = {key: value for key, value in trace.items() if key not in ("request", "response")}
    assert mapped == EXPECTED[name]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_trace_satisfies_the_trace_model(name: str) -> None:
    # Given / When
    trace = convert_event(load(name))

    # Then it has no None anywhere and every field keeps the ingest rules
    assert_well_formed(trace)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize(
    ("field", "source"), [("request", "requestParameters"), ("response", "responseElements")]
)
def test_fixture_request_and_response_parse_back_to_the_original(
    name: str, field: str, source: str
) -> None:
    # Given the CloudTrail record inside the envelope
    envelope = load(name)
    original = envelope["detail"].get(source)

    # When it is converted
    trace = convert_event(envelope)

    # Then the field is the compact, key-sorted JSON of the original, or absent when it was null
    if original is None:
        assert field not in trace
    else:
        assert json.loads(trace[field]) == original
        assert trace[field] == json.dumps(original, separators=(",", ":"), sort_keys=True)


def test_the_fixtures_cover_each_detail_type_and_identity_type() -> None:
    # Given all fixtures
    envelopes = [load(name) for name in FIXTURE_NAMES]

    # Then they exercise what the converter has to tell apart
    detail_types = {envelope["detail-type"] for envelope in envelopes}
    assert detail_types == {
        "AWS API Call via CloudTrail",
        "AWS Console Sign In via CloudTrail",
        "AWS Service Event via CloudTrail",
    }
    identity_types = {envelope["detail"]["userIdentity"].get("type") for envelope in envelopes}
    assert identity_types == {"IAMUser", "AssumedRole", "Root", "AWSService", None}


# --- unsupported events ----------------------------------------------------------------------


def test_unsupported_event_is_a_value_error() -> None:
    assert issubclass(UnsupportedEvent, ValueError)


def test_supported_detail_types() -> None:
    assert frozenset(
        {
            "AWS API Call via CloudTrail",
            "AWS Console Sign In via CloudTrail",
            "AWS Service Event via CloudTrail",
            "AWS Console Action via CloudTrail",
        }
    ) == SUPPORTED_DETAIL_TYPES


@pytest.mark.parametrize(
    "detail_type",
    [
        "EC2 Instance State-change Notification",
        "AWS Insight via CloudTrail",
        "Object Created",
        None,
    ],
)
def test_other_detail_types_are_unsupported(detail_type: str | None) -> None:
    # Given an event that is not a CloudTrail operation
    envelope = api_call()
    envelope["detail-type"] = detail_type

    # When / Then
    with pytest.raises(UnsupportedEvent):
        convert_event(envelope)


@pytest.mark.parametrize("field", ["eventID", "eventName", "eventTime", "eventSource"])
def test_a_record_without_a_required_field_is_unsupported(field: str) -> None:
    # Given a CloudTrail record that lacks one of the fields a trace cannot do without
    envelope = load("ec2_run_instances_iam_user.json")
    del envelope["detail"][field]

    # When / Then
    with pytest.raises(UnsupportedEvent, match=field):
        convert_event(envelope)
    with pytest.raises(UnsupportedEvent, match=field):
        convert_record(envelope["detail"])


@pytest.mark.parametrize("value", ["", None, 42])
def test_an_empty_or_non_string_event_id_is_unsupported(value: Any) -> None:
    with pytest.raises(UnsupportedEvent, match="eventID"):
        convert_event(api_call(eventID=value))


@pytest.mark.parametrize("detail", [None, "text", ["a"]])
def test_an_envelope_without_a_record_is_unsupported(detail: Any) -> None:
    envelope = api_call()
    envelope["detail"] = detail
    with pytest.raises(UnsupportedEvent):
        convert_event(envelope)


def test_a_record_with_an_unparseable_event_time_is_unsupported() -> None:
    with pytest.raises(UnsupportedEvent, match="eventTime"):
        convert_event(api_call(eventTime="yesterday"))


@pytest.mark.parametrize("event_type", ["AwsCloudTrailInsight", "AwsVpceEvent", 7])
def test_a_record_of_another_event_type_is_unsupported(event_type: Any) -> None:
    with pytest.raises(UnsupportedEvent, match="eventType"):
        convert_event(api_call(eventType=event_type))


# --- trace type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detail_type", "expected"),
    [
        ("AWS API Call via CloudTrail", "ApiCall"),
        ("AWS Console Action via CloudTrail", "ConsoleAction"),
        ("AWS Service Event via CloudTrail", "SystemAction"),
    ],
)
def test_a_record_without_event_type_takes_the_type_from_the_detail_type(
    detail_type: str, expected: str
) -> None:
    envelope = api_call()
    del envelope["detail"]["eventType"]
    envelope["detail-type"] = detail_type
    assert convert_event(envelope)["trace_type"] == expected


def test_a_console_action_is_a_console_action() -> None:
    envelope = api_call(eventType="AwsConsoleAction", eventName="GetConsoleScreenshot")
    envelope["detail-type"] = "AWS Console Action via CloudTrail"
    trace = convert_event(envelope)
    assert trace["trace_type"] == "ConsoleAction"
    assert trace["trace_name"] == "GetConsoleScreenshot"
    assert trace["service_type"] == "EC2"


def test_an_api_call_made_with_console_credentials_stays_an_api_call() -> None:
    envelope = api_call(sessionCredentialFromConsole="true")
    assert convert_event(envelope)["trace_type"] == "ApiCall"


# --- resources -------------------------------------------------------------------------------


def test_an_event_without_resources_derives_them_from_the_request() -> None:
    # Given CreateBucket, whose record has no `resources` but names the bucket in its request
    envelope = load("s3_create_bucket_iam_user.json")
    assert "resources" not in envelope["detail"]

    # When
    trace = convert_event(envelope)

    # Then
    assert trace["resource_type"] == "bucket"
    assert trace["resource_id"] == "amzn-s3-demo-bucket1"
    assert trace["resource_name"] == "amzn-s3-demo-bucket1"
    assert trace["resource_account_id"] == "111122223333"


@pytest.mark.parametrize(
    ("request_parameters", "resource_type", "resource_id", "resource_name"),
    [
        ({"instanceId": "i-0123456789abcdef0"}, "instance", "i-0123456789abcdef0",
         "i-0123456789abcdef0"),
        ({"instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]}},
         "instance", "i-1", "i-1"),
        ({"userName": "Bob", "groupName": "admin"}, "group", "admin", "admin"),
        ({"roleName": "TestRole"}, "role", "TestRole", "TestRole"),
        ({"roleArn": "arn:aws:iam::123456789012:role/service-role/Deployer"}, "role",
         "arn:aws:iam::123456789012:role/service-role/Deployer", "Deployer"),
        ({"functionName": "arn:aws:lambda:us-east-1:123456789012:function:thumbnail"},
         "function", "arn:aws:lambda:us-east-1:123456789012:function:thumbnail", "thumbnail"),
    ],
)
def test_a_naming_request_parameter_gives_the_resource(
    request_parameters: dict[str, Any], resource_type: str, resource_id: str, resource_name: str
) -> None:
    trace = convert_event(api_call(eventName="DoSomething", requestParameters=request_parameters))
    assert trace["resource_type"] == resource_type
    assert trace["resource_id"] == resource_id
    assert trace["resource_name"] == resource_name


@pytest.mark.parametrize(
    ("event_name", "event_source", "resource_type"),
    [
        ("CreateBucket", "s3.amazonaws.com", "bucket"),
        ("ListBuckets", "s3.amazonaws.com", "bucket"),
        ("AssumeRole", "sts.amazonaws.com", "role"),
        ("AssumeRoleWithSAML", "sts.amazonaws.com", "role"),
        ("DescribeInstances", "ec2.amazonaws.com", "instance"),
        ("DescribeAddresses", "ec2.amazonaws.com", "address"),
        ("ListPolicies", "iam.amazonaws.com", "policy"),
        ("ListMFADevices", "iam.amazonaws.com", "mfadevice"),
        ("CreateAccessKey", "iam.amazonaws.com", "accesskey"),
        ("ListTagsForResource", "kms.amazonaws.com", "tag"),
        ("GetBucketPolicyStatus", "s3.amazonaws.com", "bucketpolicystatus"),
        ("BatchGetItem", "dynamodb.amazonaws.com", "item"),
        ("ListFunctions20150331", "lambda.amazonaws.com", "function"),
        ("GetCallerIdentity", "sts.amazonaws.com", "calleridentity"),
        ("Decrypt", "kms.amazonaws.com", "kms"),
        ("ConsoleScreenshot", "monitoring.amazonaws.com", "cloudwatch"),
    ],
)
def test_without_resources_or_parameters_the_event_name_gives_the_resource_type(
    event_name: str, event_source: str, resource_type: str
) -> None:
    # Given an event with neither `resources` nor a parameter naming the resource
    envelope = api_call(eventName=event_name, eventSource=event_source)

    # When
    trace = convert_event(envelope)

    # Then the noun of the operation is the type, else the service; there is no id or name
    assert trace["resource_type"] == resource_type
    assert "resource_id" not in trace
    assert "resource_name" not in trace


def test_the_first_resource_is_the_resource() -> None:
    envelope = api_call(
        eventSource="sts.amazonaws.com",
        eventName="AssumeRole",
        resources=[
            {"accountId": "210987654321", "type": "AWS::IAM::AccessKey",
             "ARN": "arn:aws:iam::210987654321:accesskey/ASIAEXAMPLE"},
            {"accountId": "123456789012", "type": "AWS::IAM::Role",
             "ARN": "arn:aws:iam::123456789012:role/Other"},
        ],
    )
    trace = convert_event(envelope)
    assert trace["resource_type"] == "accesskey"
    assert trace["resource_id"] == "arn:aws:iam::210987654321:accesskey/ASIAEXAMPLE"
    assert trace["resource_name"] == "ASIAEXAMPLE"
    assert trace["resource_account_id"] == "210987654321"


def test_a_resource_without_a_type_takes_it_from_the_event_name() -> None:
    envelope = api_call(
        eventSource="s3.amazonaws.com",
        eventName="GetObject",
        resources=[{"ARN": "arn:aws:s3:::amzn-s3-demo-bucket/photos/2023/cat.jpg"}],
    )
    trace = convert_event(envelope)
    assert trace["resource_type"] == "object"
    assert trace["resource_name"] == "cat.jpg"
    assert trace["resource_account_id"] == "123456789012"


def test_the_envelope_account_is_the_last_resort_for_the_resource_account() -> None:
    envelope = api_call()
    del envelope["detail"]["recipientAccountId"]
    assert convert_event(envelope)["resource_account_id"] == "123456789012"
    assert "resource_account_id" not in convert_record(envelope["detail"])


# --- outcome ---------------------------------------------------------------------------------


def test_a_failed_sign_in_is_a_warning() -> None:
    # Given a failed console sign-in
    envelope = load("signin_console_login_failure.json")

    # When
    trace = convert_event(envelope)

    # Then the login trace is a warning that says why
    assert trace["trace_name"] == "login"
    assert trace["trace_rating"] == "warning"
    assert trace["code"] == "Failure"
    assert trace["message"] == "Failed authentication"
    assert trace["source_ip"] == "198.51.100.203"


def test_a_sign_in_denied_with_an_error_code_keeps_that_code() -> None:
    # Given a sign-in refused by a resource-based policy (newer records carry an errorCode)
    envelope = load("signin_console_login_failure.json")
    envelope["detail"]["errorCode"] = "AccessDenied"
    envelope["detail"]["errorMessage"] = "Authorization denied because of a resource-based policy"

    # When
    trace = convert_event(envelope)

    # Then
    assert trace["trace_rating"] == "warning"
    assert trace["code"] == "AccessDenied"
    assert trace["message"] == "Authorization denied because of a resource-based policy"


def test_a_failed_sign_in_without_an_error_message_still_has_a_message() -> None:
    envelope = load("signin_console_login_failure.json")
    del envelope["detail"]["errorMessage"]
    trace = convert_event(envelope)
    assert trace["trace_rating"] == "warning"
    assert trace["message"] == "ConsoleLogin failed"


def test_a_failed_call_without_an_error_message_names_the_operation() -> None:
    trace = convert_event(api_call(errorCode="Client.RequestLimitExceeded"))
    assert trace["trace_rating"] == "warning"
    assert trace["code"] == "Client.RequestLimitExceeded"
    assert trace["message"] == "DescribeInstances failed"


def test_a_successful_call_is_normal_with_code_200_and_no_message() -> None:
    trace = convert_event(api_call())
    assert trace["trace_rating"] == "normal"
    assert trace["code"] == "200"
    assert "message" not in trace


@pytest.mark.parametrize(
    ("event_name", "trace_name"),
    [
        ("ConsoleLogin", "login"),
        ("SwitchRole", "login"),
        ("ConsoleLogout", "logout"),
        ("ExitRole", "logout"),
        ("CheckMfa", "CheckMfa"),
        ("PasswordUpdated", "PasswordUpdated"),
        ("GetSigninToken", "GetSigninToken"),
    ],
)
def test_sign_in_events_are_iam_user_traces(event_name: str, trace_name: str) -> None:
    # Given a sign-in event of some step
    envelope = load("signin_console_login_success_mfa.json")
    envelope["detail"]["eventName"] = event_name
    envelope["detail"]["responseElements"] = {event_name: "Success"}

    # When
    trace = convert_event(envelope)

    # Then only the session openings and closings are login/logout
    assert trace["trace_name"] == trace_name
    assert trace["service_type"] == "IAM"
    assert trace["resource_type"] == "user"
    assert trace["trace_rating"] == "normal"


def test_a_failed_mfa_check_is_a_warning() -> None:
    envelope = load("signin_console_login_success_mfa.json")
    envelope["detail"]["eventName"] = "CheckMfa"
    envelope["detail"]["responseElements"] = {"CheckMfa": "Failure"}
    trace = convert_event(envelope)
    assert trace["trace_name"] == "CheckMfa"
    assert trace["trace_rating"] == "warning"
    assert trace["code"] == "Failure"


def test_a_sign_in_recognised_by_event_type_alone_is_a_sign_in() -> None:
    # Given a bare sign-in record: no detail-type, only its eventType
    record = load("signin_console_login_root.json")["detail"]

    # When
    trace = convert_record(record)

    # Then
    assert trace["trace_name"] == "login"
    assert trace["trace_type"] == "ConsoleAction"
    assert trace["service_type"] == "IAM"


# --- identities ------------------------------------------------------------------------------


def test_a_root_identity_is_the_root_user() -> None:
    # Given the root user's console sign-in
    trace = convert_event(load("signin_console_login_root.json"))

    # Then
    assert trace["user"]["principal_is_root_user"] == "true"
    assert trace["user"]["name"] == "root"
    assert trace["user"]["type"] == "Root"


def test_every_other_identity_is_not_the_root_user() -> None:
    for name in FIXTURE_NAMES:
        envelope = load(name)
        is_root = envelope["detail"]["userIdentity"].get("type") == "Root"
        user = convert_event(envelope)["user"]
        assert user["principal_is_root_user"] == ("true" if is_root else "false"), name


def test_the_root_account_alias_is_the_domain_name() -> None:
    envelope = load("iam_create_user_root.json")
    envelope["detail"]["userIdentity"]["userName"] = "example-corp"
    user = convert_event(envelope)["user"]
    assert user["domain"] == {"id": "111122223333", "name": "example-corp"}
    assert user["name"] == "root"
    assert "user_name" not in user


def test_a_federated_user_is_named_by_its_session() -> None:
    envelope = api_call(
        userIdentity={
            "type": "FederatedUser",
            "principalId": "123456789012:Bob",
            "arn": "arn:aws:sts::123456789012:federated-user/Bob",
            "accountId": "123456789012",
            "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
            "sessionContext": {
                "attributes": {"mfaAuthenticated": "false", "creationDate": "20131102T010628Z"},
                "sessionIssuer": {
                    "type": "IAMUser",
                    "principalId": "AIDAJ45Q7YFFAREXAMPLE",
                    "arn": "arn:aws:iam::123456789012:user/Alice",
                    "accountId": "123456789012",
                    "userName": "Alice",
                },
            },
        }
    )
    user = convert_event(envelope)["user"]
    assert user["name"] == "Bob"
    assert user["user_name"] == "Alice"
    assert user["session_context"] == {
        "attributes": {"created_at": "20131102T010628Z", "mfa_authenticated": "false"}
    }


def test_a_role_session_is_named_by_its_session_even_with_a_user_name() -> None:
    # Given an assumed-role identity that also carries a userName
    envelope = load("cloudwatch_put_metric_alarm_assumed_role.json")
    envelope["detail"]["userIdentity"]["userName"] = "ops-automation"

    # When / Then the session name (last ARN segment) names the user
    user = convert_event(envelope)["user"]
    assert user["name"] == "botocore-session-1678886395"
    assert user["user_name"] == "ops-automation"


def test_an_identity_without_a_type_is_named_by_the_invoking_service() -> None:
    user = convert_event(load("kms_rotate_key_service_event.json"))["user"]
    assert user["name"] == "AWS Internal"
    assert user["invoked_by"] == ["AWS Internal"]
    assert "type" not in user


def test_a_record_without_a_user_identity_has_an_empty_user() -> None:
    envelope = load("kms_rotate_key_service_event.json")
    del envelope["detail"]["userIdentity"]
    assert convert_event(envelope)["user"] == {}


def test_a_cross_account_identity_is_named_by_its_account() -> None:
    envelope = api_call(
        userIdentity={"type": "AWSAccount", "principalId": "", "accountId": "anonymous"}
    )
    user = convert_event(envelope)["user"]
    assert user["name"] == "anonymous"
    assert "id" not in user
    assert "principal_id" not in user


# --- service events --------------------------------------------------------------------------


def test_a_service_event_without_a_source_ip_has_an_empty_one() -> None:
    # Given a service event whose record has no sourceIPAddress
    envelope = load("kms_rotate_key_service_event.json")
    del envelope["detail"]["sourceIPAddress"]

    # When
    trace = convert_event(envelope)

    # Then
    assert trace["source_ip"] == ""
    assert trace["trace_type"] == "SystemAction"
    assert_well_formed(trace)


def test_a_successful_service_event_has_no_code() -> None:
    trace = convert_event(load("ec2_spot_bid_evicted_service_event.json"))
    assert "code" not in trace
    assert trace["trace_rating"] == "normal"


# --- bare records ----------------------------------------------------------------------------


def test_convert_record_converts_a_log_file_record() -> None:
    # Given a record from a CloudTrail log file (no envelope)
    record = LOG_FILE["Records"][0]

    # When
    trace = convert_record(record)

    # Then
    assert {k: v for k, v in trace.items() if k != "request"} == {
        "trace_id": "b7d4398e-b2f0-4faa-9c76-e2d316a8d67f",
        "trace_name": "UpdateTrail",
        "trace_rating": "warning",
        "trace_type": "ApiCall",
        "time": 1468523745000,
        "user": {
            "id": "EX_PRINCIPAL_ID",
            "name": "Alice",
            "user_name": "Alice",
            "domain": {"id": "123456789012"},
            "account_id": "123456789012",
            "access_key_id": "EXAMPLE_KEY_ID",
            "principal_urn": "arn:aws:iam::123456789012:user/Alice",
            "principal_id": "EX_PRINCIPAL_ID",
            "principal_is_root_user": "false",
            "type": "IAMUser",
        },
        "service_type": "CLOUDTRAIL",
        "resource_type": "trail",
        "source_ip": "205.251.233.182",
        "code": "TrailNotFoundException",
        "api_version": "1.04",
        "message": "Unknown trail: myTrail2 for the user: 123456789012",
        "request_id": "5d40662a-49f7-11e6-97e4-d9cb6ff7d6a3",
        "resource_account_id": "123456789012",
        "user_agent": "aws-cli/1.10.32 Python/2.7.9 Windows/7 botocore/1.4.22",
    }
    assert json.loads(trace["request"]) == {"name": "myTrail2"}
    assert_well_formed(trace)


def test_a_bare_record_without_event_type_is_an_api_call() -> None:
    record = copy.deepcopy(LOG_FILE["Records"][0])
    del record["eventType"]
    assert convert_record(record)["trace_type"] == "ApiCall"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_convert_record_on_the_detail_equals_convert_event(name: str) -> None:
    # Given a fixture whose detail-type agrees with its eventType and has a recipient account
    envelope = load(name)

    # When the record is converted with and without its envelope / Then the traces are equal
    assert convert_record(envelope["detail"]) == convert_event(envelope)


@pytest.mark.parametrize("value", [None, "Records", ["a"]])
def test_convert_record_refuses_what_is_not_a_record(value: Any) -> None:
    with pytest.raises(UnsupportedEvent):
        convert_record(value)


# --- field rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_time", "expected"),
    [
        ("2023-01-01T12:00:00Z", 1672574400000),
        ("2023-01-01T12:00:00.123Z", 1672574400123),
        ("2023-01-01T13:00:00+01:00", 1672574400000),
        ("2023-01-01T12:00:00", 1672574400000),
    ],
)
def test_event_time_is_milliseconds_since_the_epoch(event_time: str, expected: int) -> None:
    assert convert_event(api_call(eventTime=event_time))["time"] == expected


@pytest.mark.parametrize(
    ("event_source", "service_type"),
    [
        ("ec2.amazonaws.com", "EC2"),
        ("s3.amazonaws.com", "S3"),
        ("iam.amazonaws.com", "IAM"),
        ("sts.amazonaws.com", "STS"),
        ("signin.amazonaws.com", "IAM"),
        ("lambda.amazonaws.com", "LAMBDA"),
        ("monitoring.amazonaws.com", "CLOUDWATCH"),
        ("kms.amazonaws.com", "KMS"),
        ("access-analyzer.amazonaws.com", "ACCESS-ANALYZER"),
        ("3rdparty.example.com", "S3RDPARTY"),
    ],
)
def test_event_source_gives_the_service_type(event_source: str, service_type: str) -> None:
    trace = convert_event(api_call(eventSource=event_source))
    assert trace["service_type"] == service_type


@pytest.mark.parametrize(
    ("event_name", "trace_name"),
    [
        ("Get Thing/ä", "Get_Thing__"),
        ("2faReset", "e2faReset"),
        ("_Hidden", "e_Hidden"),
        ("A" * 100, "A" * 64),
    ],
)
def test_event_names_are_made_valid_trace_names(event_name: str, trace_name: str) -> None:
    trace = convert_event(api_call(eventName=event_name))
    assert trace["trace_name"] == trace_name
    assert_well_formed(trace)


def test_event_ids_are_made_valid_trace_ids() -> None:
    trace = convert_event(api_call(eventID="id with spaces/" + "x" * 200))
    assert trace["trace_id"] == "id_with_spaces_" + "x" * 113
    assert_well_formed(trace)


def test_control_characters_and_overlong_values_are_cleaned() -> None:
    # Given a record whose strings carry control characters and exceed the trace limits
    envelope = api_call(
        userAgent="agent\n\tname\x00",
        sourceIPAddress="2001:db8::" + "f" * 200,
        errorCode="Bad\rCode",
        errorMessage="line one\nline two",
    )

    # When
    trace = convert_event(envelope)

    # Then
    assert trace["user_agent"] == "agentname"
    assert len(trace["source_ip"]) == 128
    assert trace["code"] == "BadCode"
    assert trace["message"] == "line oneline two"
    assert_well_formed(trace)


def test_read_only_written_as_a_string_is_a_boolean() -> None:
    assert convert_event(api_call(readOnly="true"))["read_only"] is True
    assert convert_event(api_call(readOnly="false"))["read_only"] is False
    assert "read_only" not in convert_event(api_call())


def test_an_empty_access_key_is_left_out() -> None:
    user = convert_event(load("signin_console_login_root.json"))["user"]
    assert "access_key_id" not in user


def test_the_region_is_not_stored() -> None:
    trace = convert_event(load("ec2_run_instances_iam_user.json"))
    assert "us-east-2" not in json.dumps(
        {key: value for key, value in trace.items() if key not in ("request", "response")}
    )
    assert "location_info" not in trace
    assert "endpoint" not in trace


def test_converting_does_not_change_the_event() -> None:
    envelope = load("s3_put_bucket_policy_assumed_role.json")
    before = copy.deepcopy(envelope)
    convert_event(envelope)
    assert envelope == before
