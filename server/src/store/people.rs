//! The people who signed in: each person id with the display name of their last
//! sign-in, so pages can show "Name (id)" where grants, approvals and the audit log
//! keep the id alone.

use super::sql::{PostgresStore, SqliteStore};
use super::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::BTreeMap;

#[async_trait]
pub trait People {
    /// Records that person `id` signed in at `at` as `display_name` (the latest
    /// sign-in's name wins).
    async fn record_person(
        &self,
        id: &str,
        display_name: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The display names of those of `ids` who have signed in, by id.
    async fn display_names(&self, ids: &[String]) -> Result<BTreeMap<String, String>, StoreError>;
}

macro_rules! impl_people {
    ($store:ty) => {
        #[async_trait]
        impl People for $store {
            async fn record_person(
                &self,
                id: &str,
                display_name: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO people (id, display_name, seen_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, \
                     seen_at = excluded.seen_at",
                )
                .bind(id)
                .bind(display_name)
                .bind(at.trunc_subsecs(6))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn display_names(
                &self,
                ids: &[String],
            ) -> Result<BTreeMap<String, String>, StoreError> {
                if ids.is_empty() {
                    return Ok(BTreeMap::new());
                }
                let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT id, display_name FROM people WHERE id IN ({})",
                    marks.join(", ")
                );
                let mut query = sqlx::query_as::<_, (String, String)>(&sql);
                for id in ids {
                    query = query.bind(id);
                }
                Ok(query.fetch_all(&self.pool).await?.into_iter().collect())
            }
        }
    };
}

impl_people!(SqliteStore);
impl_people!(PostgresStore);
