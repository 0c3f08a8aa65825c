#!/usr/bin/env python3
"""TEST AND DEMO SUPPORT ONLY — never point a production Timebox at this.

A small HTTP double of the two AWS APIs the evidence step calls and the AWS emulator
(moto) lacks or leaves empty, speaking their published wire protocols so the real AWS
SDK clients talk to it:

- CloudTrail ``LookupEvents`` (AWS JSON 1.1: ``POST /`` with
  ``X-Amz-Target: CloudTrail_20131101.LookupEvents``);
- Amazon Detective (REST-JSON): ``POST /investigations/startInvestigation``,
  ``/investigations/getInvestigation``, ``/investigations/listIndicators``,
  ``/graphs/list``.

Activity: for the user name asked about (``LookupAttributes`` ``Username``), one call
every ``--every`` seconds (aligned to the clock) for each account and permission set
given, from the grant's activation until now. Timebox reads from one hour before the
activation (``--lookaround``), so the double starts there plus that hour. Calls keep
coming after the grant ends, so a demo grant that ended shows "activity after
revocation". Every few calls one is ``AccessDenied``; calls alternate between two
source addresses. Investigations are ``RUNNING`` when first read, then ``SUCCESSFUL``
with severity ``HIGH`` and a set of indicators.

Service control policies (``--moto URL``): the double watches the emulator's SCPs
(every second) and evaluates their ``Deny`` statements the way AWS would for the
three condition keys Timebox writes (``identitystore:userId``, ``aws:PrincipalArn``
with ``ArnLike``, ``aws:TokenIssueTime`` with ``DateLessThan``): a call made while a
matching deny stood answers ``AccessDenied`` ("with an explicit deny in a service
control policy"), so a grant whose sessions Timebox closed shows its calls refused
after the close.

Usage: aws_evidence_double.py --port 5001 --accounts 111122223333,444455556666 \
          --permission-sets AdministratorAccess,ReadOnlyAccess [--every 60] \
          [--moto http://127.0.0.1:5000]
Standard library only.
"""
import argparse
import fnmatch
import hashlib
import json
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The SDKs send "CloudTrail_20131101.<Operation>"; the long form is accepted too.
CLOUDTRAIL_TARGET = "CloudTrail_20131101."
PAGE = 50

ARGS = None
INVESTIGATIONS = {}
LOCK = threading.Lock()
# Deny statements seen in the emulator's SCPs: key -> [statement, account, first seen,
# last seen or None while it stands]. Written by the watcher thread.
DENIES = {}
USER_IDS = {}
SEEN_MARGIN = 15

NAMES = [
    ("s3.amazonaws.com", "ListBuckets", True, None),
    ("ec2.amazonaws.com", "DescribeInstances", True, None),
    ("iam.amazonaws.com", "ListRoles", True, None),
    ("s3.amazonaws.com", "GetObject", True, "AccessDenied"),
    ("ec2.amazonaws.com", "StopInstances", False, None),
]
ADDRESSES = ["198.51.100.23", "203.0.113.77"]


def iso(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def role_name(ps):
    # Identity Center names the role AWSReservedSSO_<permission set>_<16 hex digits>.
    return "AWSReservedSSO_%s_%s" % (ps, hashlib.sha256(ps.encode()).hexdigest()[:16])


def role_id(account, ps):
    return "AROA" + hashlib.sha256((account + ps).encode()).hexdigest()[:17].upper()


def aws_json(service, target, body):
    """One call to the emulator in the AWS JSON 1.1 protocol (moto checks no signature)."""
    req = urllib.request.Request(
        ARGS.moto.rstrip("/") + "/", data=json.dumps(body).encode(), method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/%s/aws4_request, "
                             "SignedHeaders=host;x-amz-target, Signature=0" % service,
        })
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def read_policies():
    """The Deny statements attached to each account now, recorded with when each was
    first and last seen. A deny counts from SEEN_MARGIN before it was first seen: the
    reads can lag on a busy machine, and Timebox records the close only after its
    write, so a call answered late as allowed would look like a deny that failed. Calls
    refused a little early fall before the recorded close (errors in the tail), which
    is harmless."""
    now = time.time()
    standing = set()
    for account in ARGS.accounts:
        listed = aws_json("organizations", "AWSOrganizationsV20161128.ListPoliciesForTarget",
                          {"TargetId": account, "Filter": "SERVICE_CONTROL_POLICY"})
        for p in listed.get("Policies", []):
            policy = aws_json("organizations", "AWSOrganizationsV20161128.DescribePolicy",
                              {"PolicyId": p["Id"]})
            doc = json.loads(policy["Policy"]["Content"])
            statements = doc.get("Statement", [])
            if isinstance(statements, dict):
                statements = [statements]
            for s in statements:
                if s.get("Effect") == "Deny":
                    standing.add((account, json.dumps(s, sort_keys=True)))
    with LOCK:
        for key in standing:
            entry = DENIES.get(key)
            if entry is None or entry[3] is not None:
                DENIES[key] = [json.loads(key[1]), key[0], now - SEEN_MARGIN, None]
        for key, entry in DENIES.items():
            if key not in standing and entry[3] is None:
                entry[3] = now


def watch_policies():
    """Reads the SCPs every second (and lookup_events once more before answering)."""
    while True:
        try:
            read_policies()
        except Exception as e:  # the emulator restarting: try again next second
            sys.stderr.write("aws-evidence-double: cannot read the SCPs: %s\n" % e)
        time.sleep(1)


def user_id(user):
    if user in USER_IDS:
        return USER_IDS[user]
    try:
        instance = aws_json("sso", "SWBExternalService.ListInstances", {})["Instances"][0]
        found = aws_json("identitystore", "AWSIdentityStore.GetUserId", {
            "IdentityStoreId": instance["IdentityStoreId"],
            "AlternateIdentifier": {"UniqueAttribute": {"AttributePath": "userName", "AttributeValue": user}},
        })
        USER_IDS[user] = found.get("UserId")
    except Exception:
        return None
    return USER_IDS[user]


def as_list(v):
    return v if isinstance(v, list) else [v]


def denied(account, ps, user, t, issued):
    """Whether a Deny that stood at time t refuses this session (issued at `issued`)."""
    if not ARGS.moto:
        return False
    uid = user_id(user)
    role_arn = "arn:aws:iam::%s:role/aws-reserved/sso.amazonaws.com/%s" % (account, role_name(ps))
    with LOCK:
        entries = list(DENIES.values())
    for s, where, since, until in entries:
        if where != account or t < since or (until is not None and t >= until):
            continue
        cond = s.get("Condition", {})
        users = cond.get("StringEquals", {}).get("identitystore:userId")
        if users is not None and uid not in as_list(users):
            continue
        pattern = cond.get("ArnLike", {}).get("aws:PrincipalArn")
        if pattern is not None and not any(fnmatch.fnmatchcase(role_arn, p) for p in as_list(pattern)):
            continue
        before = cond.get("DateLessThan", {}).get("aws:TokenIssueTime")
        if before is not None:
            limit = datetime.strptime(before, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
            if issued >= limit:
                continue
        return True
    return False


def event(account, ps, user, t, i):
    source, name, read_only, error = NAMES[i % len(NAMES)]
    ip = ADDRESSES[(i // 3) % len(ADDRESSES)]
    eid = str(uuid.UUID(hashlib.md5(("%s|%s|%s|%d" % (account, ps, user, t)).encode()).hexdigest()))
    role = role_name(ps)
    session_start = t - (t % 3600)
    explicit_deny = denied(account, ps, user, t, session_start)
    if explicit_deny:
        error = "AccessDenied"
    record = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "%s:%s" % (role_id(account, ps), user),
            "arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (account, role, user),
            "accountId": account,
            "accessKeyId": "ASIA" + eid.replace("-", "")[:16].upper(),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id(account, ps),
                    "arn": "arn:aws:iam::%s:role/aws-reserved/sso.amazonaws.com/%s" % (account, role),
                    "accountId": account,
                    "userName": role,
                },
                "attributes": {"creationDate": iso(session_start), "mfaAuthenticated": "false"},
            },
        },
        "eventTime": iso(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.30 Python/3.11.6 Linux/6.5 exe/x86_64.ubuntu.22",
        "requestParameters": None,
        "responseElements": None,
        "eventID": eid,
        "readOnly": read_only,
        "resources": [{"ARN": "arn:aws:s3:::demo-bucket-%s" % account, "accountId": account, "type": "AWS::S3::Bucket"}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = "User is not authorized to perform this operation"
        if explicit_deny:
            record["errorMessage"] += " with an explicit deny in a service control policy"
    return {
        "EventId": eid,
        "EventName": name,
        "ReadOnly": "true" if read_only else "false",
        "AccessKeyId": record["userIdentity"]["accessKeyId"],
        "EventTime": float(t),
        "EventSource": source,
        "Username": user,
        "Resources": [{"ResourceType": "AWS::S3::Bucket", "ResourceName": "demo-bucket-%s" % account}],
        "CloudTrailEvent": json.dumps(record),
    }


def lookup_events(body):
    user = None
    for a in body.get("LookupAttributes", []):
        if a.get("AttributeKey") == "Username":
            user = a.get("AttributeValue")
    if not user:
        return {"Events": []}
    # "Now" is taken first: a deny written after it can only concern later calls, and
    # one written before it is read below, before any call is answered.
    now = time.time()
    if ARGS.moto:
        try:
            read_policies()
        except Exception as e:
            sys.stderr.write("aws-evidence-double: cannot read the SCPs: %s\n" % e)
    start = float(body.get("StartTime", now - 3600)) + ARGS.lookaround
    end = min(float(body.get("EndTime", now)), now)
    every = ARGS.every
    events = []
    t = int(start) - (int(start) % every) + every
    i = 0
    while t <= end:
        for account in ARGS.accounts:
            for ps in ARGS.permission_sets:
                events.append(event(account, ps, user, t, i))
        t += every
        i += 1
    events.reverse()  # LookupEvents answers newest first
    offset = int(body.get("NextToken") or 0)
    limit = min(int(body.get("MaxResults") or PAGE), PAGE)
    page = events[offset : offset + limit]
    out = {"Events": page}
    if offset + limit < len(events):
        out["NextToken"] = str(offset + limit)
    return out


def indicators():
    return [
        {"IndicatorType": "TTP_OBSERVED", "IndicatorDetail": {"TTPsObservedDetail": {
            "Tactic": "Discovery", "Technique": "Cloud Infrastructure Discovery",
            "Procedure": "Discovery:IAMUser/AnomalousBehavior", "IpAddress": ADDRESSES[1],
            "APIName": "ListRoles", "APISuccessCount": 34, "APIFailureCount": 2}}},
        {"IndicatorType": "IMPOSSIBLE_TRAVEL", "IndicatorDetail": {"ImpossibleTravelDetail": {
            "StartingIpAddress": ADDRESSES[0], "EndingIpAddress": ADDRESSES[1],
            "StartingLocation": "Frankfurt, DE", "EndingLocation": "Sao Paulo, BR", "HourlyTimeDelta": 1}}},
        {"IndicatorType": "FLAGGED_IP_ADDRESS", "IndicatorDetail": {"FlaggedIpAddressDetail": {
            "IpAddress": ADDRESSES[1], "Reason": "AWS_THREAT_INTELLIGENCE"}}},
        {"IndicatorType": "NEW_GEOLOCATION", "IndicatorDetail": {"NewGeolocationDetail": {
            "Location": "Sao Paulo, BR", "IpAddress": ADDRESSES[1], "IsNewForEntireAccount": True}}},
        {"IndicatorType": "NEW_USER_AGENT", "IndicatorDetail": {"NewUserAgentDetail": {
            "UserAgent": "aws-cli/2.15.30", "IsNewForEntireAccount": False}}},
    ]


def detective(path, body):
    graph = body.get("GraphArn") or ARGS.graph_arn
    if path == "/graphs/list":
        return 200, {"GraphList": [{"Arn": ARGS.graph_arn, "CreatedTime": iso(time.time() - 86400 * 30)}]}
    if path == "/investigations/startInvestigation":
        for k in ("GraphArn", "EntityArn", "ScopeStartTime", "ScopeEndTime"):
            if k not in body:
                return 400, {"Message": "%s is required" % k}
        inv_id = "%021d" % (int(time.time() * 1000) % 10**21)
        with LOCK:
            while inv_id in INVESTIGATIONS:
                inv_id = "%021d" % (int(inv_id) + 1)
            INVESTIGATIONS[inv_id] = {"body": body, "reads": 0, "created": time.time()}
        return 200, {"InvestigationId": inv_id}
    inv_id = body.get("InvestigationId")
    with LOCK:
        inv = INVESTIGATIONS.get(inv_id)
        if inv is not None and path == "/investigations/getInvestigation":
            inv["reads"] += 1
    if inv is None:
        return 404, {"Message": "The investigation was not found"}
    if path == "/investigations/getInvestigation":
        b = inv["body"]
        return 200, {
            "GraphArn": graph, "InvestigationId": inv_id, "EntityArn": b["EntityArn"],
            "EntityType": "IAM_ROLE", "CreatedTime": iso(inv["created"]),
            "ScopeStartTime": b["ScopeStartTime"], "ScopeEndTime": b["ScopeEndTime"],
            "Status": "RUNNING" if inv["reads"] <= 1 else "SUCCESSFUL",
            "Severity": "HIGH", "State": "ACTIVE",
        }
    if path == "/investigations/listIndicators":
        return 200, {"GraphArn": graph, "InvestigationId": inv_id, "Indicators": indicators()}
    return 404, {"Message": "unknown operation %s" % path}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, payload, content_type, error_type=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        target = self.headers.get("X-Amz-Target", "")
        if CLOUDTRAIL_TARGET in target:
            op = target.split(CLOUDTRAIL_TARGET, 1)[1]
            if op == "LookupEvents":
                return self.reply(200, lookup_events(body), "application/x-amz-json-1.1")
            return self.reply(400, {"__type": "UnsupportedOperationException", "message": op},
                              "application/x-amz-json-1.1")
        status, payload = detective(self.path.split("?")[0], body)
        error = None
        if status == 404:
            error = "ResourceNotFoundException"
        elif status == 400:
            error = "ValidationException"
        self.reply(status, payload, "application/json", error)

    def do_GET(self):
        self.reply(200, {"double": "aws-evidence", "investigations": len(INVESTIGATIONS)}, "application/json")

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("aws-evidence-double: " + fmt % args + "\n")


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--accounts", required=True, type=lambda s: [a for a in s.split(",") if a])
    p.add_argument("--permission-sets", required=True, type=lambda s: [a for a in s.split(",") if a])
    p.add_argument("--every", type=int, default=60, help="seconds between two demo calls")
    p.add_argument("--lookaround", type=int, default=3600,
                   help="how long before the activation Timebox starts reading (its default)")
    p.add_argument("--graph-arn",
                   default="arn:aws:detective:us-east-1:123456789012:graph:0123456789abcdef0123456789abcdef")
    p.add_argument("--moto", default=None,
                   help="the emulator's URL: evaluate its service control policies")
    p.add_argument("--verbose", action="store_true")
    ARGS = p.parse_args()
    if ARGS.moto:
        threading.Thread(target=watch_policies, daemon=True).start()
    server = ThreadingHTTPServer((ARGS.host, ARGS.port), Handler)
    print(json.dumps({"listening": "http://%s:%d" % (ARGS.host, server.server_address[1])}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
