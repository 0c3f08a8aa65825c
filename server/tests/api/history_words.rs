//! The history's word search against each backend's full-text index: rare words
//! (read from the index, then sorted) and common ones (the newest-first walk; on
//! SQLite past `store::search::RARE_AT_MOST` matches) give full pages, or the last,
//! in the history's order.

use crate::helpers::TestDb;
use chrono::{Duration, TimeZone, Utc};
use timebox_server::store::search::RARE_AT_MOST;
use timebox_server::store::{Cursor, GrantFilter, SearchWords};

crate::on_both_backends!(
    rare_and_common_words_give_full_pages_in_order,
    the_same_pages_once_the_words_have_statistics,
    a_changed_justification_is_indexed_again,
);

const GRANTS: i64 = 12_000;
const RARE: [i64; 3] = [100, 5_000, 11_000];

/// `GRANTS` grants, one a second; even ones say "deploy", the rest "rotate", and the
/// `RARE` ones also "zanzibar". Every third is Rita's.
async fn seed(db: &TestDb) {
    const {
        assert!(
            GRANTS / 2 > RARE_AT_MOST,
            "the common word must take the walk"
        )
    };
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for start in (0..GRANTS).step_by(1000) {
        let rows: Vec<String> = (start..start + 1000)
            .map(|i| {
                let at = (base + Duration::seconds(i))
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                let word = if i % 2 == 0 { "deploy" } else { "rotate" };
                let rare = if RARE.contains(&i) { " zanzibar" } else { "" };
                let who = if i % 3 == 0 { "rita" } else { "sam" };
                format!(
                    "('{}', '{who}', '111122223333', 'ReadOnlyAccess', \
                     '{word} the fleet, run {i}{rare}', 60, 0, 'closed', '{at}', '{at}', 1)",
                    uuid_of(i)
                )
            })
            .collect();
        db.exec(&format!(
            "INSERT INTO grants (id, requester, account_id, permission_set, justification, \
             duration_minutes, approvals_required, state, created_at, updated_at, version) \
             VALUES {}",
            rows.join(", ")
        ))
        .await;
    }
}

fn uuid_of(i: i64) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Every page of `filter`, `limit` rows each, as run numbers; checks that only the
/// last page is short.
async fn pages(db: &TestDb, filter: &GrantFilter, limit: u32) -> Vec<i64> {
    let store = db.store();
    let mut after = None;
    let mut runs = Vec::new();
    loop {
        let page = store.list_grants(filter, after, limit).await.unwrap();
        runs.extend(page.iter().map(|g| {
            let j = g.request.justification.as_str();
            let n = j.split("run ").nth(1).unwrap().split(' ').next().unwrap();
            n.parse::<i64>().unwrap()
        }));
        match page.last() {
            Some(g) if page.len() == limit as usize => {
                after = Some(Cursor {
                    created_at: g.created_at,
                    id: g.id,
                })
            }
            _ => return runs,
        }
    }
}

fn words(text: &str) -> GrantFilter {
    GrantFilter {
        words: SearchWords::parse(text),
        ..GrantFilter::default()
    }
}

async fn rare_and_common_words_give_full_pages_in_order(db: &TestDb) {
    seed(db).await;
    words_give_full_pages_in_order(db).await;
}

/// After ANALYZE, PostgreSQL's plan for a common word comes from the index's
/// statistics, not a count (`store::search::WordStats`); the pages are the same.
async fn the_same_pages_once_the_words_have_statistics(db: &TestDb) {
    seed(db).await;
    db.exec("ANALYZE").await;
    words_give_full_pages_in_order(db).await;
}

async fn words_give_full_pages_in_order(db: &TestDb) {
    // A rare word: read through the index, newest first, pages full but the last.
    assert_eq!(
        pages(db, &words("Zanzibar"), 2).await,
        vec![11_000, 5_000, 100]
    );
    // A common word (more matches than SQLite sorts itself): the walk.
    let deploy = pages(db, &words("deploy"), 500).await;
    let want: Vec<i64> = (0..GRANTS).rev().filter(|i| i % 2 == 0).collect();
    assert_eq!(deploy, want);
    // Every word must be there, as a whole word; with the other filters.
    assert_eq!(
        pages(db, &words("deploy, ZANZIBAR"), 50).await,
        vec![11_000, 5_000, 100]
    );
    assert_eq!(pages(db, &words("deplo"), 50).await, Vec::<i64>::new());
    assert_eq!(pages(db, &words("ploy"), 50).await, Vec::<i64>::new());
    let mut rita = words("deploy");
    rita.requester = Some("rita".into());
    let want: Vec<i64> = (0..GRANTS).rev().filter(|i| i % 6 == 0).collect();
    assert_eq!(pages(db, &rita, 333).await, want);
    // Digits are words too.
    assert_eq!(pages(db, &words("run 5000"), 50).await, vec![5_000]);
}

async fn a_changed_justification_is_indexed_again(db: &TestDb) {
    seed(db).await;
    // A justification changed by hand is indexed again (SQLite's trigger; PostgreSQL's
    // index is over the column itself).
    db.exec(&format!(
        "UPDATE grants SET justification = 'quokka census, run 7' WHERE id = '{}'",
        uuid_of(7)
    ))
    .await;
    assert_eq!(pages(db, &words("quokka"), 50).await, vec![7]);
    assert!(
        !pages(db, &words("rotate"), 1000).await.contains(&7),
        "the old words are gone"
    );
}
