//! The CQL session: connecting, the schema (`configure`), the prepared
//! statements, and every request wrapped in retries with backoff.
//!
//! Retries happen at two levels. The driver's default retry policy (the
//! same as Heroic's `DefaultRetryPolicy`) retries an attempt on another
//! node in the cases it knows to be safe; every statement here is marked
//! idempotent (a point rewritten with the same value is the same point). On
//! top of that, a request that still fails with a transient kind
//! (`Unavailable`, `Timeout`) is sent again after a backoff, `maxRetries`
//! times at most and not after `maxElapsedBackoffMs`. A paged read that
//! fails between pages is restarted from its first page.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use heroic_plugin_api::sdk::support::RetryPolicy;
use heroic_plugin_api::ErrorKind;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use tokio::sync::OnceCell;

use crate::config::{Authentication, CassandraConfig, ConsistencyLevel};
use crate::cql::Cql;
use crate::error::{CassandraError, Failure};
use crate::stats::Stats;

/// The statements every operation uses, prepared once the table exists.
pub struct Statements {
    pub insert: PreparedStatement,
    pub fetch_row: PreparedStatement,
    pub fetch_rows: PreparedStatement,
    pub delete_point: PreparedStatement,
    pub list_keys: PreparedStatement,
}

pub struct Client {
    session: Session,
    cql: Cql,
    config: CassandraConfig,
    /// `initialBackoffMs` doubling to `maxBackoffMs` with jitter,
    /// `maxRetries` retries, none starting after `maxElapsedBackoffMs`.
    retry: RetryPolicy,
    stats: Arc<Stats>,
    /// Prepared on first use, not at start: with `configure = true` the
    /// host creates the backend before it creates the table. A failed
    /// preparation is not cached, so the next call tries again.
    statements: OnceCell<Statements>,
}

impl From<ConsistencyLevel> for Consistency {
    fn from(level: ConsistencyLevel) -> Self {
        match level {
            ConsistencyLevel::Any => Consistency::Any,
            ConsistencyLevel::One => Consistency::One,
            ConsistencyLevel::Two => Consistency::Two,
            ConsistencyLevel::Three => Consistency::Three,
            ConsistencyLevel::Quorum => Consistency::Quorum,
            ConsistencyLevel::All => Consistency::All,
            ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
            ConsistencyLevel::EachQuorum => Consistency::EachQuorum,
            ConsistencyLevel::LocalOne => Consistency::LocalOne,
        }
    }
}

impl Client {
    /// Opens the session; fails with `Unavailable` when no seed answers,
    /// within about `connectTimeoutMs`, and with `Config` for bad
    /// credentials, an unreadable `tls` file or a certificate the CA does
    /// not vouch for.
    pub async fn connect(config: &CassandraConfig, stats: Arc<Stats>) -> Result<Client, CassandraError> {
        let seeds = config.seed_addresses();
        let profile = ExecutionProfile::builder()
            .consistency(config.consistency_level.into())
            .request_timeout(Some(config.read_timeout()))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&seeds)
            .connection_timeout(config.connect_timeout())
            .default_execution_profile_handle(profile.into_handle())
            // Client-side timestamps, increasing within this process: a
            // point rewritten right after is newer whichever node
            // coordinates either write.
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            // Unquoted names are lowercase in the schema tables.
            .keyspaces_to_fetch([config.keyspace.to_lowercase()]);
        if let Authentication::Plain { username, password } = &config.authentication {
            builder = builder.user(username, password.expose());
        }
        if let Some(tls) = &config.tls {
            // Built here, not at validation: the files are read when the
            // backend starts, so a rotated CA is picked up by a restart.
            let context = crate::tls::client_config(tls).map_err(|e| CassandraError::Config(e.to_string()))?;
            builder = builder.tls_context(Some(context));
        }
        let connect_failed = |kind, reason: String| CassandraError::Connect { seeds: seeds.join(","), kind, reason };
        // The driver bounds each connection attempt; this bounds the whole
        // start (name resolution, metadata fetch) so that `create` never hangs.
        let deadline = config.connect_timeout().saturating_mul(3) + Duration::from_secs(5);
        let session = match tokio::time::timeout(deadline, builder.build()).await {
            Err(_) => {
                let reason = format!("no node completed the cql handshake within {deadline:?}");
                return Err(connect_failed(ErrorKind::UNAVAILABLE, reason));
            }
            Ok(Err(e)) => {
                let failure = Failure::from(e);
                let mut reason = failure.message;
                if config.tls.is_some() && failure.kind == ErrorKind::CONFIG && reason.contains("certificate") {
                    reason.push_str(
                        " (the nodes' certificates must be signed by the CA in tls.caFile and, unless \
                         tls.verifyHostname = false, name the node's IP address; nodes that ask for a client \
                         certificate need tls.certFile and tls.keyFile)",
                    );
                }
                return Err(connect_failed(failure.kind, reason));
            }
            Ok(Ok(session)) => session,
        };
        Ok(Client {
            session,
            cql: Cql::new(&config.keyspace, &config.table),
            config: config.clone(),
            retry: RetryPolicy::new(
                Duration::from_millis(config.initial_backoff_ms),
                Duration::from_millis(config.max_backoff_ms),
            )
            .with_max_retries(config.max_retries)
            .with_max_elapsed(Duration::from_millis(config.max_elapsed_backoff_ms)),
            stats,
            statements: OnceCell::new(),
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry
    /// budget is spent.
    pub async fn retry<T, F, Fut>(&self, operation: &'static str, mut attempt: F) -> Result<T, CassandraError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut backoff = self.retry.backoff();
        loop {
            let failure = match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let attempts = backoff.attempts();
            // The driver gives no retry hint: the backoff alone decides.
            let wait = if failure.is_retryable() { backoff.next_delay(None) } else { None };
            if let Some(wait) = wait {
                self.stats.retries.inc();
                tracing::debug!(operation, attempt = attempts, error = %failure, ?wait, "retrying a cassandra request");
                tokio::time::sleep(wait).await;
                continue;
            }
            self.stats.errors.inc();
            if failure.kind == ErrorKind::TIMEOUT {
                self.stats.timeouts.inc();
            }
            return Err(CassandraError::Cql { operation, attempts, kind: failure.kind, message: failure.message });
        }
    }

    /// Creates the keyspace and the table if they do not exist.
    pub async fn configure(&self) -> Result<(), CassandraError> {
        let steps = [
            ("create keyspace", self.cql.create_keyspace(self.config.replication_factor)),
            ("create table", self.cql.create_table(self.config.compact_storage)),
        ];
        for (operation, statement) in steps {
            let (keyspace, table) = (&self.config.keyspace, &self.config.table);
            tracing::info!(%keyspace, %table, operation, "configuring cassandra");
            self.retry(operation, || async {
                // The driver waits for schema agreement after DDL.
                self.session.query_unpaged(statement.as_str(), ()).await.map(drop).map_err(Failure::from)
            })
            .await?;
        }
        Ok(())
    }

    async fn prepare(&self, statement: String) -> Result<PreparedStatement, Failure> {
        let mut prepared = self.session.prepare(statement).await?;
        prepared.set_is_idempotent(true);
        prepared.set_page_size(self.config.fetch_size);
        Ok(prepared)
    }

    /// The prepared statements, preparing them on first use.
    pub async fn statements(&self) -> Result<&Statements, CassandraError> {
        self.statements
            .get_or_try_init(|| async {
                let (insert, fetch_row, fetch_rows, delete_point, list_keys) = futures::try_join!(
                    self.prepare(self.cql.insert()),
                    self.prepare(self.cql.fetch_row()),
                    self.prepare(self.cql.fetch_rows()),
                    self.prepare(self.cql.delete_point()),
                    self.prepare(self.cql.list_keys()),
                )
                .map_err(CassandraError::Prepare)?;
                Ok(Statements { insert, fetch_row, fetch_rows, delete_point, list_keys })
            })
            .await
    }

    /// Runs a paged read to the end (the statement's `LIMIT` bounds it).
    pub async fn read<R, V>(
        &self,
        operation: &'static str,
        statement: &PreparedStatement,
        values: V,
    ) -> Result<Vec<R>, CassandraError>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
        V: SerializeRow,
    {
        self.retry(operation, || async {
            self.stats.read_queries.inc();
            let pager = self.session.execute_iter(statement.clone(), &values).await?;
            let mut rows = pager
                .rows_stream::<R>()
                .map_err(|e| Failure::new(ErrorKind::CONFIG, format!("the table's columns are not heroic's: {e}")))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().await {
                out.push(row?);
            }
            Ok(out)
        })
        .await
    }

    /// Sends `statement` once per value row as one unlogged batch. Callers
    /// keep a batch to one partition, which Cassandra applies as a single
    /// mutation.
    pub async fn batch<V: SerializeRow>(
        &self,
        operation: &'static str,
        statement: &PreparedStatement,
        rows: &[V],
    ) -> Result<(), CassandraError> {
        let mut batch = Batch::new(BatchType::Unlogged);
        for _ in rows {
            batch.append_statement(statement.clone());
        }
        batch.set_is_idempotent(true);
        self.retry(operation, || async {
            self.stats.write_batches.inc();
            self.session.batch(&batch, rows).await.map(drop).map_err(Failure::from)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_levels_map_one_to_one() {
        assert_eq!(Consistency::from(ConsistencyLevel::One), Consistency::One);
        assert_eq!(Consistency::from(ConsistencyLevel::LocalQuorum), Consistency::LocalQuorum);
        assert_eq!(Consistency::from(ConsistencyLevel::EachQuorum), Consistency::EachQuorum);
    }
}
