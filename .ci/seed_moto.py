#!/usr/bin/env python3
"""Seeds the AWS emulator (moto_server) with a small, realistic organisation for the
local demo (.ci/dev) and the browser tests: an organisation with two OUs and four
member accounts, an IAM Identity Center identity store with the demo people and their
groups, three permission sets, one standing group assignment, and an S3 bucket
with Object Lock for the audit checkpoints.

Usage: seed_moto.py http://127.0.0.1:5000 [--domain corp.example] [--json]

--domain names the people as an identity provider that provisions Identity Center
over SCIM does (Entra ID and Okta send the user principal name): userName and email
rita@corp.example instead of rita. --json prints the seeded ids on the last line.
"""
import sys

import boto3

url = sys.argv[1]
flags = sys.argv[2:]
domain = flags[flags.index("--domain") + 1] if "--domain" in flags else None
kw = dict(
    endpoint_url=url,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)
orgs = boto3.client("organizations", **kw)
sso = boto3.client("sso-admin", **kw)
ids = boto3.client("identitystore", **kw)

orgs.create_organization(FeatureSet="ALL")
root = orgs.list_roots()["Roots"][0]["Id"]
ous = {
    name: orgs.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
    for name in ("Production", "Development")
}
accounts = {}
for name, ou in (
    ("payments-prod", "Production"),
    ("web-prod", "Production"),
    ("sandbox-dev", "Development"),
    ("data-dev", "Development"),
):
    status = orgs.create_account(AccountName=name, Email=f"aws+{name}@example.com")
    account_id = status["CreateAccountStatus"]["AccountId"]
    orgs.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=ous[ou])
    accounts[name] = account_id

instance = sso.list_instances()["Instances"][0]
instance_arn = instance["InstanceArn"]
store = instance["IdentityStoreId"]

# The people of the local OpenID provider (end2end/oidc/provider.mjs), so a demo
# sign-in maps to an Identity Store user by userName (identity_center.user_match).
users = {}
for user, given, family in (
    ("rita", "Rita", "Requester"),
    ("arno", "Arno", "Approver"),
    ("mia", "Mia", "Approver"),
    ("audrey", "Audrey", "Auditor"),
    ("ada", "Ada", "Admin"),
):
    users[user] = ids.create_user(
        IdentityStoreId=store,
        UserName=f"{user}@{domain}" if domain else user,
        DisplayName=f"{given} {family}",
        Name={"GivenName": given, "FamilyName": family},
        Emails=[{"Value": f"{user}@{domain or 'example.com'}", "Primary": True}],
    )["UserId"]
# The identity provider's groups, as SCIM provisioning mirrors them into the identity
# store (notifications find approvers and auditors there), and a team group with a
# standing assignment.
groups = {
    g: ids.create_group(IdentityStoreId=store, DisplayName=g)["GroupId"]
    for g in (
        "timebox-requesters",
        "timebox-approvers",
        "timebox-auditors",
        "timebox-admins",
        "developers",
    )
}
for user, group in (
    ("rita", "timebox-requesters"),
    ("rita", "developers"),
    ("arno", "timebox-approvers"),
    ("mia", "timebox-approvers"),
    ("audrey", "timebox-auditors"),
    ("ada", "timebox-admins"),
):
    ids.create_group_membership(
        IdentityStoreId=store, GroupId=groups[group], MemberId={"UserId": users[user]}
    )

sets = {}
for name, session, description in (
    ("AdministratorAccess", "PT1H", "Full access, for incidents"),
    ("DatabaseAdmin", "PT2H", "RDS and DynamoDB administration"),
    ("ReadOnlyAccess", "PT4H", "Read-only access to every service"),
):
    # moto answers an integer for a missing SessionDuration: always give one.
    sets[name] = sso.create_permission_set(
        InstanceArn=instance_arn, Name=name, Description=description, SessionDuration=session
    )["PermissionSet"]["PermissionSetArn"]

# Standing access Timebox should notice as "another path": developers read sandbox-dev.
sso.create_account_assignment(
    InstanceArn=instance_arn,
    TargetId=accounts["sandbox-dev"],
    TargetType="AWS_ACCOUNT",
    PermissionSetArn=sets["ReadOnlyAccess"],
    PrincipalType="GROUP",
    PrincipalId=groups["developers"],
)

# The audit checkpoints' bucket (.ci/dev sets audit.checkpoint_s3 to it): Object Lock
# on, as Timebox requires at start-up; each checkpoint object is then locked in
# compliance mode (docs/audit.md).
s3 = boto3.client("s3", **kw)
s3.create_bucket(Bucket="timebox-audit-checkpoints", ObjectLockEnabledForBucket=True)

import json

print(f"seeded {len(accounts)} accounts, {len(users)} users, {len(groups)} groups, {len(sets)} permission sets")
# Machine-readable for the browser tests: seed_moto.py URL --json
if "--json" in flags:
    print(json.dumps({"accounts": accounts, "users": users, "groups": groups, "permission_sets": sets, "instance_arn": instance_arn}))
