//! The data the benchmarks seed, shared by `bench_history` and `bench_http`: grants
//! spread over two years (users, accounts, permission sets, states and justification
//! words drawn from a fixed generator, one grant in [`RARE_EVERY`] saying
//! [`RARE_WORD`]), and the audit events of those grants, sealed into one valid chain.

pub const USERS: usize = 500;
pub const ACCOUNTS: usize = 60;
pub const PERMISSION_SETS: [&str; 8] = [
    "AdministratorAccess",
    "PowerUserAccess",
    "ReadOnlyAccess",
    "DatabaseAdmin",
    "NetworkAdmin",
    "SecurityAudit",
    "Billing",
    "SupportUser",
];
pub const STATES: [(&str, u32); 6] = [
    ("closed", 70),
    ("revoked", 10),
    ("denied", 8),
    ("cancelled", 5),
    ("expired", 5),
    ("active", 2),
];
pub const WORDS: [&str; 10] = [
    "incident",
    "deploy",
    "migration",
    "outage",
    "audit",
    "rotation",
    "backup",
    "rollback",
    "billing",
    "capacity",
];

/// The rare word: in one grant in this many.
pub const RARE_EVERY: usize = 100_000;
pub const RARE_WORD: &str = "zanzibar";

/// A small deterministic generator (no dependency, repeatable runs).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub fn account(i: usize) -> String {
    format!("{:012}", 100_000_000_000 + i as u64 * 7919)
}

pub fn state(r: &mut Rng) -> &'static str {
    let total: u32 = STATES.iter().map(|s| s.1).sum();
    let mut pick = (r.next() % u64::from(total)) as u32;
    for (s, w) in STATES {
        if pick < w {
            return s;
        }
        pick -= w;
    }
    "closed"
}

macro_rules! seed_grants {
    ($db:ty, $pool:expr, $n:expr, $start:expr) => {{
        let mut r = crate::seed::Rng(0x9E37_79B9_7F4A_7C15);
        let span = chrono::Duration::days(730).num_seconds();
        let mut done = 0;
        while done < $n {
            let batch = (1000).min($n - done);
            let mut tx = $pool.begin().await.unwrap();
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO grants (id, requester, account_id, permission_set, justification, \
                 duration_minutes, approvals_required, state, created_at, updated_at, version) ",
            );
            let rows: Vec<_> = (0..batch)
                .map(|k| {
                    let created: chrono::DateTime<chrono::Utc> = $start
                        + chrono::Duration::seconds((r.next() % span as u64) as i64)
                        + chrono::Duration::microseconds((r.next() % 1_000_000) as i64);
                    (
                        uuid::Uuid::new_v4().to_string(),
                        format!("user{:03}", r.below(USERS)),
                        account(r.below(ACCOUNTS)),
                        PERMISSION_SETS[r.below(PERMISSION_SETS.len())],
                        format!(
                            "{} {} for ticket {}{}",
                            WORDS[r.below(WORDS.len())],
                            WORDS[r.below(WORDS.len())],
                            r.below(100_000),
                            // One grant in RARE_EVERY says the rare word.
                            if (done + k) % RARE_EVERY == 7 {
                                format!(" {RARE_WORD}")
                            } else {
                                String::new()
                            }
                        ),
                        60_i64,
                        state(&mut r),
                        created,
                    )
                })
                .collect();
            qb.push_values(rows, |mut b, row| {
                b.push_bind(row.0)
                    .push_bind(row.1)
                    .push_bind(row.2)
                    .push_bind(row.3)
                    .push_bind(row.4)
                    .push_bind(row.5)
                    .push_bind(1_i64)
                    .push_bind(row.6)
                    .push_bind(row.7)
                    .push_bind(row.7)
                    .push_bind(1_i64);
            });
            qb.build().execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            done += batch;
            if done % 100_000 == 0 {
                eprintln!("  seeded {done}");
            }
        }
    }};
}

/// The actions of a grant's ten audit events, with the states they move between.
pub const LIFE: [(&str, Option<&str>, Option<&str>); 10] = [
    ("request", None, Some("pending")),
    ("approve", Some("pending"), Some("approved")),
    ("start_provisioning", Some("approved"), Some("provisioning")),
    ("provision_succeeded", Some("provisioning"), Some("active")),
    ("revoke", Some("active"), Some("revoking")),
    ("revoke_succeeded", Some("revoking"), Some("revoked")),
    ("sessions_closed", None, None),
    ("close", Some("revoked"), Some("closed")),
    ("evidence_summarized", None, None),
    ("review", None, None),
];

/// Appends `$per` audit events to each grant (oldest grant first, its events a minute
/// apart from its creation), sealed into one chain from the genesis hash, and moves
/// the chain's head to the last; for an empty `audit_events`.
macro_rules! seed_events {
    ($db:ty, $pool:expr, $per:expr) => {{
        use sqlx::Row;
        let per: usize = $per;
        let mut prev = timebox_server::store::audit::GENESIS_HASH.to_owned();
        let mut seq: i64 = 0;
        let mut after: Option<(chrono::DateTime<chrono::Utc>, String)> = None;
        loop {
            let mut qb =
                sqlx::QueryBuilder::<$db>::new("SELECT id, created_at, requester FROM grants");
            // A row-value comparison: an index range on both backends (PostgreSQL
            // walked the index from its start for the `a > x OR (a = x AND …)` form,
            // each page slower than the last).
            if let Some((at, id)) = after.clone() {
                qb.push(" WHERE (created_at, id) > (")
                    .push_bind(at)
                    .push(", ")
                    .push_bind(id)
                    .push(")");
            }
            qb.push(" ORDER BY created_at, id LIMIT ")
                .push_bind((1000 / per.max(1)).max(1) as i64);
            let grants = qb.build().fetch_all($pool).await.unwrap();
            let Some(last) = grants.last() else { break };
            after = Some((last.get("created_at"), last.get("id")));
            let mut rows = Vec::with_capacity(grants.len() * per);
            for g in &grants {
                let id: String = g.get("id");
                let created: chrono::DateTime<chrono::Utc> = g.get("created_at");
                let requester: String = g.get("requester");
                for (k, (action, from, to)) in LIFE.iter().cycle().take(per).enumerate() {
                    seq += 1;
                    let e = timebox_server::store::audit::AuditEvent {
                        seq,
                        grant_id: Some(id.clone()),
                        at: created + chrono::Duration::minutes(k as i64),
                        actor: if k == 0 {
                            requester.clone()
                        } else {
                            "timebox".to_owned()
                        },
                        action: (*action).to_owned(),
                        from_state: from.map(str::to_owned),
                        to_state: to.map(str::to_owned),
                        reason: (k == 0).then(|| "seeded by the benchmark".to_owned()),
                        details: format!("{{\"n\":{seq}}}"),
                        prev_hash: prev.clone(),
                        hash: String::new(),
                    };
                    let mut sealed = e;
                    sealed.hash = timebox_server::store::audit::recompute(&sealed);
                    prev.clone_from(&sealed.hash);
                    rows.push(sealed);
                }
            }
            let mut tx = $pool.begin().await.unwrap();
            for chunk in rows.chunks(1000) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO audit_events (seq, grant_id, at, actor, action, from_state, \
                     to_state, reason, details, prev_hash, hash) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.seq)
                        .push_bind(e.grant_id.clone())
                        .push_bind(e.at)
                        .push_bind(e.actor.clone())
                        .push_bind(e.action.clone())
                        .push_bind(e.from_state.clone())
                        .push_bind(e.to_state.clone())
                        .push_bind(e.reason.clone())
                        .push_bind(e.details.clone())
                        .push_bind(e.prev_hash.clone())
                        .push_bind(e.hash.clone());
                });
                qb.build().execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
            if seq % 1_000_000 < (rows.len() as i64) {
                eprintln!("  sealed {seq} events");
            }
        }
        sqlx::query("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(&prev)
            .execute($pool)
            .await
            .unwrap();
        seq
    }};
}
