//! The other-paths answers (`GET /api/v1/other-paths`), cached per (person, account,
//! permission set) and rate-limited per person, so a requester looping the endpoint
//! cannot spend the Identity Center budget the reaper's revocations need.

use app::api::OtherPath;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an other-paths answer is reused for the same (person, account,
/// permission set).
pub const OTHER_PATHS_TTL: Duration = Duration::from_secs(60);

/// Identity Center lookups (cache misses) one person may cause per minute: every
/// lookup takes three calls from the 20-per-second budget revocations share.
pub const OTHER_PATHS_PER_MINUTE: usize = 10;

type PathsKey = (String, String, String);

/// Other-paths answers by (person, account, permission set), and each person's
/// recent lookups. A requester looping the endpoint is answered from the cache and
/// then refused; the Identity Center budget stays with the reaper.
#[derive(Debug, Default)]
pub struct OtherPathsCache {
    answers: Mutex<HashMap<PathsKey, (Instant, Vec<OtherPath>)>>,
    lookups: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl OtherPathsCache {
    pub(super) fn cached(&self, key: &PathsKey) -> Option<Vec<OtherPath>> {
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        answers.retain(|_, (at, _)| now.duration_since(*at) < OTHER_PATHS_TTL);
        answers.get(key).map(|(_, v)| v.clone())
    }

    pub(super) fn keep(&self, key: PathsKey, paths: &[OtherPath]) {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (Instant::now(), paths.to_vec()));
    }

    /// Counts a lookup by `person`; `Err` with the seconds to wait when they have
    /// made [`OTHER_PATHS_PER_MINUTE`] in the last minute.
    pub(super) fn count(&self, person: &str) -> Result<(), u64> {
        let mut lookups = self.lookups.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        lookups.retain(|_, q| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= minute) {
                q.pop_front();
            }
            !q.is_empty()
        });
        let q = lookups.entry(person.to_owned()).or_default();
        if q.len() >= OTHER_PATHS_PER_MINUTE {
            let wait = q
                .front()
                .map_or(60, |t| (minute - now.duration_since(*t)).as_secs() + 1);
            return Err(wait);
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> OtherPath {
        OtherPath {
            principal_type: "GROUP".into(),
            principal: p.into(),
            principal_id: p.into(),
        }
    }

    #[test]
    fn a_person_causes_at_most_ten_lookups_a_minute() {
        let cache = OtherPathsCache::default();
        for _ in 0..OTHER_PATHS_PER_MINUTE {
            assert!(cache.count("alice").is_ok());
        }
        let wait = cache.count("alice").unwrap_err();
        assert!((1..=61).contains(&wait), "{wait}");
        // Someone else is not held back by alice.
        assert!(cache.count("bob").is_ok());
    }

    #[test]
    fn answers_are_reused_per_person_and_access() {
        let cache = OtherPathsCache::default();
        let key = (
            "alice".to_owned(),
            "111111111111".to_owned(),
            "Admin".to_owned(),
        );
        assert!(cache.cached(&key).is_none());
        cache.keep(key.clone(), &[path("g-1")]);
        assert_eq!(cache.cached(&key), Some(vec![path("g-1")]));
        let other = ("bob".to_owned(), key.1.clone(), key.2.clone());
        assert!(cache.cached(&other).is_none(), "per person");
    }
}
