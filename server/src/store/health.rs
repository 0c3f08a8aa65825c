//! Whether the database answers (`/readyz`).

use super::sql::{PostgresStore, SqliteStore};
use super::StoreError;
use async_trait::async_trait;

#[async_trait]
pub trait Health {
    /// The database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

macro_rules! impl_health {
    ($store:ty) => {
        #[async_trait]
        impl Health for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

impl_health!(SqliteStore);
impl_health!(PostgresStore);
