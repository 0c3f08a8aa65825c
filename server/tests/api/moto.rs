//! The AWS emulator: `moto_server` (PyPI `moto[server]`) on a free local port, one per
//! test, seeded through the real AWS SDK with an organisation, an identity store and
//! permission sets. Assertions read the emulator's state (`ListAccountAssignments`),
//! not Timebox's own word.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use timebox_server::aws::Calls;
use timebox_server::identity_center::sdk::{Clients, SdkIdentityCenter};
use timebox_server::metrics::Metrics;

pub const REGION: &str = "us-east-1";

/// A running emulator; killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("address").port()
}

impl Moto {
    /// Starts `moto_server` (or `$TIMEBOX_MOTO_SERVER`) and waits until it answers.
    /// There is no silent skip: without moto the test fails and says how to get it.
    pub async fn start() -> Moto {
        let program = std::env::var("TIMEBOX_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} (pip install 'moto[server]', or run .ci/setup): {e}")
            });
        // Owned from here on: a panic below kills it on drop.
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client
                .get(format!("{}/moto-api/data.json", moto.url))
                .send()
                .await
            {
                if r.status().is_success() {
                    return moto;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{program} did not answer on {} within 10s", moto.url);
    }

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_ssoadmin::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }

    pub async fn clients(&self) -> Clients {
        let c = self.sdk_config().await;
        Clients {
            sso_admin: aws_sdk_ssoadmin::Client::new(&c),
            identity_store: aws_sdk_identitystore::Client::new(&c),
            organizations: aws_sdk_organizations::Client::new(&c),
        }
    }

    /// The adapter under test, discovering the instance with `ListInstances`.
    pub async fn identity_center(&self, metrics: Arc<Metrics>) -> Arc<SdkIdentityCenter> {
        Arc::new(SdkIdentityCenter::new(
            self.clients().await,
            None,
            None,
            Calls::new(metrics),
        ))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`seed`] created.
#[derive(Debug, Clone)]
pub struct Org {
    pub instance_arn: String,
    pub identity_store_id: String,
    /// Account ids: prod, staging, sandbox.
    pub accounts: Vec<String>,
    pub ou_workloads: String,
    /// userName → user id.
    pub users: Vec<(String, String)>,
    pub sre_group: String,
    /// name → ARN.
    pub permission_sets: Vec<(String, String)>,
}

impl Org {
    pub fn user(&self, name: &str) -> String {
        self.users
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| panic!("no seeded user {name}"))
    }

    pub fn permission_set(&self, name: &str) -> String {
        self.permission_sets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no seeded permission set {name}"))
    }
}

/// Seeds a small organisation: a Workloads OU with three accounts, `users` in the
/// identity store (`alice` and `bob` in group `sre`, plus any extra names), and the
/// permission sets `AdministratorAccess` (PT2H) and `ReadOnlyAccess` (PT1H).
pub async fn seed(moto: &Moto, extra_users: &[String]) -> Org {
    let clients = moto.clients().await;
    let orgs = &clients.organizations;
    orgs.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create organization");
    let roots = orgs.list_roots().send().await.expect("list roots");
    let root = roots.roots()[0].id().expect("root id").to_owned();
    let ou = orgs
        .create_organizational_unit()
        .parent_id(&root)
        .name("Workloads")
        .send()
        .await
        .expect("create OU");
    let ou_id = ou
        .organizational_unit()
        .and_then(|o| o.id())
        .expect("ou id")
        .to_owned();
    let mut accounts = Vec::new();
    for name in ["prod", "staging", "sandbox"] {
        let out = orgs
            .create_account()
            .account_name(name)
            .email(format!("aws-{name}@example.com"))
            .send()
            .await
            .expect("create account");
        let id = out
            .create_account_status()
            .and_then(|s| s.account_id())
            .expect("account id")
            .to_owned();
        orgs.move_account()
            .account_id(&id)
            .source_parent_id(&root)
            .destination_parent_id(&ou_id)
            .send()
            .await
            .expect("move account");
        accounts.push(id);
    }

    let instances = clients
        .sso_admin
        .list_instances()
        .send()
        .await
        .expect("list instances");
    let instance = &instances.instances()[0];
    let instance_arn = instance.instance_arn().expect("arn").to_owned();
    let identity_store_id = instance.identity_store_id().expect("store").to_owned();

    let ids = &clients.identity_store;
    let mut names: Vec<String> = vec!["alice".into(), "bob".into(), "carol".into()];
    names.extend(extra_users.iter().cloned());
    let mut users = Vec::new();
    for n in &names {
        let out = ids
            .create_user()
            .identity_store_id(&identity_store_id)
            .user_name(n)
            .display_name(n)
            .name(
                aws_sdk_identitystore::types::Name::builder()
                    .given_name(n)
                    .family_name("Example")
                    .build(),
            )
            .emails(
                aws_sdk_identitystore::types::Email::builder()
                    .value(format!("{n}@example.com"))
                    .primary(true)
                    .build(),
            )
            .send()
            .await
            .expect("create user");
        users.push((n.clone(), out.user_id().to_owned()));
    }
    let group = ids
        .create_group()
        .identity_store_id(&identity_store_id)
        .display_name("sre")
        .send()
        .await
        .expect("create group");
    let sre_group = group.group_id().to_owned();
    for (n, id) in &users {
        if n == "alice" || n == "bob" {
            ids.create_group_membership()
                .identity_store_id(&identity_store_id)
                .group_id(&sre_group)
                .member_id(aws_sdk_identitystore::types::MemberId::UserId(id.clone()))
                .send()
                .await
                .expect("membership");
        }
    }

    let mut permission_sets = Vec::new();
    for (name, session) in [("AdministratorAccess", "PT2H"), ("ReadOnlyAccess", "PT1H")] {
        // moto answers an integer for a missing SessionDuration, which the SDK
        // cannot read: always give one.
        let out = clients
            .sso_admin
            .create_permission_set()
            .instance_arn(&instance_arn)
            .name(name)
            .description(format!("{name} for Timebox tests"))
            .session_duration(session)
            .send()
            .await
            .expect("create permission set");
        let arn = out
            .permission_set()
            .and_then(|p| p.permission_set_arn())
            .expect("ps arn")
            .to_owned();
        permission_sets.push((name.to_owned(), arn));
    }
    Org {
        instance_arn,
        identity_store_id,
        accounts,
        ou_workloads: ou_id,
        users,
        sre_group,
        permission_sets,
    }
}

/// The emulator's USER assignments of `permission_set_arn` in `account`: principal ids,
/// with repeats (moto accepts duplicates, so a double create shows up here).
pub async fn user_assignments(
    moto: &Moto,
    org: &Org,
    account: &str,
    permission_set_arn: &str,
) -> Vec<String> {
    let clients = moto.clients().await;
    let out = clients
        .sso_admin
        .list_account_assignments()
        .instance_arn(&org.instance_arn)
        .account_id(account)
        .permission_set_arn(permission_set_arn)
        .send()
        .await
        .expect("list account assignments");
    out.account_assignments()
        .iter()
        .filter(|a| a.principal_type() == Some(&aws_sdk_ssoadmin::types::PrincipalType::User))
        .filter_map(|a| a.principal_id().map(str::to_owned))
        .collect()
}

/// Assigns `permission_set_arn` in `account` to a group or a user, directly in the
/// emulator (access Timebox did not give).
pub async fn assign(
    moto: &Moto,
    org: &Org,
    account: &str,
    permission_set_arn: &str,
    principal_type: aws_sdk_ssoadmin::types::PrincipalType,
    principal_id: &str,
) {
    moto.clients()
        .await
        .sso_admin
        .create_account_assignment()
        .instance_arn(&org.instance_arn)
        .target_id(account)
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(permission_set_arn)
        .principal_type(principal_type)
        .principal_id(principal_id)
        .send()
        .await
        .expect("create the assignment");
}
