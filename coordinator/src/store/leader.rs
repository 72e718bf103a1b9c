//! The `leader_leases` table: which coordinator runs a singleton task.

use std::time::Duration;

use super::workers::micros;
use super::{JobStore, now_micros};
use crate::Error;

impl JobStore {
    /// Takes or renews the lease `name` for `holder` until `lease` from now, and
    /// returns whether `holder` holds it.
    ///
    /// One conditional upsert decides: the row is written only when it is new,
    /// already `holder`'s, or expired. So of two coordinators calling at once,
    /// at most one gets `true` while the lease is live.
    pub async fn try_acquire_lease(&self, name: &str, holder: &str, lease: Duration) -> Result<bool, Error> {
        let now = now_micros();
        let acquired = sqlx::query_scalar::<_, String>(
            "INSERT INTO leader_leases (name, holder, expires_at_us) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_us = excluded.expires_at_us \
             WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at_us <= $4 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now + micros(lease))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(acquired.is_some())
    }

    /// Gives up the lease `name` if `holder` holds it, so another coordinator can
    /// take it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), Error> {
        sqlx::query("UPDATE leader_leases SET expires_at_us = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
