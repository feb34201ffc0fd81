//! A small Bigtable client on tonic: connecting (plaintext to an emulator,
//! TLS with OAuth2 tokens to Google), ReadRows with resumption, MutateRows
//! retrying only the failed entries, and the table admin calls `configure`
//! needs. Every call has a deadline and retries transient failures with
//! exponential backoff and jitter.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use googleapis_tonic_google_bigtable_admin_v2::google::bigtable::admin::v2 as admin;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2 as data;
use tonic::metadata::MetadataValue;
use heroic_gcp::{connect, Auth};
use tonic::transport::Channel;
use tonic::{Code, Status};

use admin::bigtable_table_admin_client::BigtableTableAdminClient;
use data::bigtable_client::BigtableClient;

use crate::config::{BigtableConfig, Target};
use crate::error::{is_retryable, BigtableError, EntryTally};
use crate::read_rows::{resume_after, Row, RowAssembler};
use crate::stats::Stats;

const SCOPES: &[&str] =
    &["https://www.googleapis.com/auth/bigtable.data", "https://www.googleapis.com/auth/bigtable.admin.table"];

/// Bigtable answers can be large (a row of a busy series holds up to 2^32
/// cells); tonic's 4 MiB default would fail such reads.
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Exponential backoff with jitter, bounded in attempts and elapsed time.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial: Duration,
    pub max: Duration,
    pub max_elapsed: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &BigtableConfig) -> Self {
        RetryPolicy {
            max_retries: c.max_retries,
            initial: Duration::from_millis(c.initial_backoff_ms),
            max: Duration::from_millis(c.max_backoff_ms),
            max_elapsed: Duration::from_millis(c.max_elapsed_backoff_ms),
        }
    }
}

/// The retry state of one call.
struct Backoff {
    policy: RetryPolicy,
    retries: u32,
    started: Instant,
}

impl Backoff {
    fn new(policy: RetryPolicy) -> Self {
        Backoff { policy, retries: 0, started: Instant::now() }
    }

    fn attempts(&self) -> u32 {
        self.retries + 1
    }

    /// The pause before the next attempt, or `None` when out of retries.
    fn next(&mut self) -> Option<Duration> {
        if self.retries >= self.policy.max_retries {
            return None;
        }
        let exp = self.policy.initial.saturating_mul(1u32 << self.retries.min(20));
        let capped = exp.min(self.policy.max);
        // Jitter in [50 %, 100 %] so that many clients hitting one hot tablet
        // do not retry in lockstep (Heroic's retry storms, #710 …).
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let delay = capped.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0);
        if self.started.elapsed() + delay > self.policy.max_elapsed {
            return None;
        }
        self.retries += 1;
        Some(delay)
    }
}

/// What one attempt of a call ended with.
enum Failure {
    Status(Status),
    TimedOut,
}

impl From<Status> for Failure {
    /// tonic enforces the deadline sent as `grpc-timeout` itself and answers
    /// `CANCELLED` when it expires; the server answers `DEADLINE_EXCEEDED`.
    /// Both are this call's own deadline passing: a timeout.
    fn from(status: Status) -> Self {
        match status.code() {
            Code::Cancelled | Code::DeadlineExceeded => Failure::TimedOut,
            _ => Failure::Status(status),
        }
    }
}

/// Connections and call plumbing. Cheap to share: tonic channels multiplex.
pub struct Client {
    data: BigtableClient<Channel>,
    admin: BigtableTableAdminClient<Channel>,
    auth: Auth,
    table_name: String,
    instance_name: String,
    profile: String,
    /// `x-goog-request-params`, so Google routes the call to the table's
    /// cluster without a lookup.
    routing: MetadataValue<tonic::metadata::Ascii>,
    retry: RetryPolicy,
    pub(crate) mutate_timeout: Duration,
    pub(crate) read_timeout: Duration,
    short_timeout: Duration,
    stats: Arc<Stats>,
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// Connects to the emulator or to Google, failing if the endpoint cannot
    /// be reached within `shortRpcTimeoutMs`.
    pub async fn connect(config: &BigtableConfig, stats: Arc<Stats>) -> Result<Self, BigtableError> {
        let short = config.short_timeout();
        let (data_channel, admin_channel, auth) = match config.target().map_err(BigtableError::Config)? {
            Target::Emulator(emulator) => {
                let channel = heroic_gcp::connect_emulator(&emulator, short).await?;
                (channel.clone(), channel, Auth::none())
            }
            Target::Cloud { data, admin, credentials } => {
                let auth = Auth::new(&credentials, SCOPES).await?;
                (connect(&data, true, short).await?, connect(&admin, true, short).await?, auth)
            }
        };
        let table_name = config.table_name();
        let mut routing = format!("table_name={}", percent_encode(&table_name));
        if !config.profile.is_empty() {
            routing.push_str(&format!("&app_profile_id={}", percent_encode(&config.profile)));
        }
        Ok(Client {
            data: BigtableClient::new(data_channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            admin: BigtableTableAdminClient::new(admin_channel),
            auth,
            table_name,
            instance_name: config.instance_name(),
            profile: config.profile.clone(),
            routing: routing.parse().map_err(|_| BigtableError::Config("table name is not ascii".into()))?,
            retry: RetryPolicy::from_config(config),
            mutate_timeout: config.mutate_timeout(),
            read_timeout: config.read_rows_timeout(),
            short_timeout: short,
            stats,
        })
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// Wraps a message with credentials, routing and a deadline the server
    /// sees too (`grpc-timeout`).
    async fn request<T>(&self, message: T, timeout: Duration) -> Result<tonic::Request<T>, Status> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        request.metadata_mut().insert("x-goog-request-params", self.routing.clone());
        self.auth.authorize(&mut request).await?;
        Ok(request)
    }

    /// Decides after a failed attempt: `Ok(())` once the backoff pause has
    /// passed when a retry is due, else the error to give up with.
    async fn retry_or_fail(
        &self,
        operation: &'static str,
        backoff: &mut Backoff,
        failure: Failure,
        timeout: Duration,
    ) -> Result<(), BigtableError> {
        let retryable = match &failure {
            Failure::TimedOut => {
                self.stats.timeouts.inc();
                true
            }
            Failure::Status(s) => is_retryable(s.code()),
        };
        let attempts = backoff.attempts();
        if retryable {
            if let Some(delay) = backoff.next() {
                self.stats.retries.inc();
                tracing::debug!(operation, attempts, ?delay, "retrying a bigtable call");
                tokio::time::sleep(delay).await;
                return Ok(());
            }
        }
        self.stats.errors.inc();
        Err(match failure {
            Failure::TimedOut => BigtableError::Timeout { operation, attempts, timeout },
            Failure::Status(s) => {
                BigtableError::Rpc { operation, attempts, code: s.code(), message: s.message().to_string() }
            }
        })
    }

    /// Runs a unary call with deadline and retries.
    async fn unary<T, F, Fut>(&self, operation: &'static str, mut call: F) -> Result<T, BigtableError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut backoff = Backoff::new(self.retry);
        loop {
            let failure = match tokio::time::timeout(self.short_timeout, call()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(status)) => Failure::from(status),
                Err(_) => Failure::TimedOut,
            };
            self.retry_or_fail(operation, &mut backoff, failure, self.short_timeout).await?;
        }
    }

    /// Reads rows of `rows` through `filter`, handing each committed row to
    /// `visit` in key order until it answers `Break`. A failed stream is
    /// resumed after the last row delivered, so no row is seen twice.
    pub async fn read_rows(
        &self,
        rows: data::RowSet,
        filter: Option<data::RowFilter>,
        visit: &mut (dyn FnMut(Row) -> ControlFlow<()> + Send),
    ) -> Result<(), BigtableError> {
        let mut backoff = Backoff::new(self.retry);
        let mut last_key: Option<Vec<u8>> = None;
        loop {
            let mut set = rows.clone();
            if let Some(last) = &last_key {
                if !resume_after(&mut set, last) {
                    return Ok(());
                }
            }
            let message = data::ReadRowsRequest {
                table_name: self.table_name.clone(),
                app_profile_id: self.profile.clone(),
                rows: Some(set),
                filter: filter.clone(),
                ..Default::default()
            };
            self.stats.read_rpcs.inc();
            let attempt = async {
                let mut stream = self.data.clone().read_rows(self.request(message, self.read_timeout).await?).await?.into_inner();
                let mut assembler = RowAssembler::new();
                while let Some(response) = stream.message().await? {
                    for chunk in response.chunks {
                        let row = assembler.push(chunk).map_err(|e| Status::internal(format!("protocol: {e}")))?;
                        if let Some(row) = row {
                            last_key = Some(row.key.clone());
                            self.stats.rows_read.inc();
                            if visit(row).is_break() {
                                return Ok(());
                            }
                        }
                    }
                }
                assembler.finish().map_err(|e| Status::internal(format!("protocol: {e}")))
            };
            let failure = match tokio::time::timeout(self.read_timeout, attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(status)) if status.code() == Code::Internal && status.message().starts_with("protocol: ") => {
                    return Err(BigtableError::Protocol(status.message().to_string()));
                }
                Ok(Err(status)) => Failure::from(status),
                Err(_) => Failure::TimedOut,
            };
            self.retry_or_fail("read rows", &mut backoff, failure, self.read_timeout).await?;
        }
    }

    /// Applies row mutations; entries that fail transiently are retried
    /// alone. Safe to repeat: every cell is written at a fixed timestamp.
    pub async fn mutate_rows(&self, entries: Vec<data::mutate_rows_request::Entry>) -> Result<(), BigtableError> {
        let outcome = self.mutate_rows_each(entries).await;
        let mut tally = EntryTally::new(outcome.len());
        outcome.into_iter().for_each(|failure| tally.add(failure));
        tally.finish()
    }

    /// Like [`Client::mutate_rows`], answering per entry (`None`: applied),
    /// so that the bulk writer can answer each write for its own entries.
    /// Entries failing transiently are retried alone; an entry failing for
    /// good keeps its own error, and a call that fails as a whole fails the
    /// entries not applied yet.
    pub async fn mutate_rows_each(
        &self,
        entries: Vec<data::mutate_rows_request::Entry>,
    ) -> Vec<Option<BigtableError>> {
        let mut outcome: Vec<Option<BigtableError>> = vec![None; entries.len()];
        // (index in `entries`, entry) of the entries not applied yet.
        let mut pending: Vec<(usize, data::mutate_rows_request::Entry)> = entries.into_iter().enumerate().collect();
        let mut backoff = Backoff::new(self.retry);
        loop {
            let message = data::MutateRowsRequest {
                table_name: self.table_name.clone(),
                app_profile_id: self.profile.clone(),
                entries: pending.iter().map(|(_, e)| e.clone()).collect(),
                ..Default::default()
            };
            self.stats.mutate_rpcs.inc();
            let attempt = async {
                let mut stream =
                    self.data.clone().mutate_rows(self.request(message, self.mutate_timeout).await?).await?.into_inner();
                let mut statuses: Vec<Option<Status>> = vec![None; pending.len()];
                while let Some(response) = stream.message().await? {
                    for entry in response.entries {
                        let status = entry.status.unwrap_or_default();
                        if let Some(slot) = usize::try_from(entry.index).ok().and_then(|i| statuses.get_mut(i)) {
                            *slot = Some(Status::new(Code::from(status.code), status.message));
                        }
                    }
                }
                Ok::<_, Status>(statuses)
            };
            let failure = match tokio::time::timeout(self.mutate_timeout, attempt).await {
                Ok(Ok(statuses)) => {
                    let attempts = backoff.attempts();
                    let entry_error = |s: Status| BigtableError::Rpc {
                        operation: "mutate rows",
                        attempts,
                        code: s.code(),
                        message: s.message().to_string(),
                    };
                    let mut retry = Vec::new();
                    let mut last = None;
                    for ((index, entry), status) in std::mem::take(&mut pending).into_iter().zip(statuses) {
                        match status {
                            Some(s) if s.code() == Code::Ok => {}
                            Some(s) if !is_retryable(s.code()) => outcome[index] = Some(entry_error(s)),
                            // An entry the server did not report on is
                            // treated as unavailable: retrying it is harmless.
                            s => {
                                last = Some(s.unwrap_or_else(|| Status::unavailable("no status reported for the entry")));
                                retry.push((index, entry));
                            }
                        }
                    }
                    pending = retry;
                    match last {
                        None => break,
                        Some(status) => match backoff.next() {
                            Some(delay) => {
                                self.stats.retries.inc();
                                tracing::debug!(entries = pending.len(), attempts, ?delay, "retrying failed mutate rows entries");
                                tokio::time::sleep(delay).await;
                                continue;
                            }
                            None => {
                                for (index, _) in &pending {
                                    outcome[*index] = Some(entry_error(status.clone()));
                                }
                                break;
                            }
                        },
                    }
                }
                Ok(Err(status)) => Failure::from(status),
                Err(_) => Failure::TimedOut,
            };
            // `retry_or_fail` counts the error itself.
            if let Err(e) = self.retry_or_fail("mutate rows", &mut backoff, failure, self.mutate_timeout).await {
                for (index, _) in &pending {
                    outcome[*index] = Some(e.clone());
                }
                return outcome;
            }
        }
        if outcome.iter().any(Option::is_some) {
            self.stats.errors.inc();
        }
        outcome
    }

    /// Creates the table with `families`, or adds the families an existing
    /// table lacks. Safe to run again and from several nodes at once.
    pub async fn ensure_table(&self, families: &[String]) -> Result<(), BigtableError> {
        let get = || async {
            let request = admin::GetTableRequest {
                name: self.table_name.clone(),
                view: admin::table::View::SchemaView as i32,
            };
            match self.admin.clone().get_table(self.request(request, self.short_timeout).await?).await {
                Ok(table) => Ok(Some(table.into_inner())),
                Err(s) if s.code() == Code::NotFound => Ok(None),
                Err(s) => Err(s),
            }
        };
        let family = || admin::ColumnFamily {
            // Keep one version: a rewrite of a point replaces it (Heroic's
            // "duplicates overwrite") and old versions do not pile up.
            gc_rule: Some(admin::GcRule { rule: Some(admin::gc_rule::Rule::MaxNumVersions(1)) }),
            ..Default::default()
        };
        let table = match self.unary("get table", get).await? {
            Some(table) => table,
            None => {
                let create = || async {
                    let table = admin::Table {
                        column_families: families.iter().map(|f| (f.clone(), family())).collect(),
                        ..Default::default()
                    };
                    let table_id = self.table_name.rsplit('/').next().unwrap_or_default().to_string();
                    let request = admin::CreateTableRequest {
                        parent: self.instance_name.clone(),
                        table_id,
                        table: Some(table),
                        ..Default::default()
                    };
                    match self.admin.clone().create_table(self.request(request, self.short_timeout).await?).await {
                        Ok(_) => Ok(true),
                        // Another node created it first: check its families.
                        Err(s) if s.code() == Code::AlreadyExists => Ok(false),
                        Err(s) => Err(s),
                    }
                };
                if self.unary("create table", create).await? {
                    tracing::info!(table = %self.table_name, ?families, "created the bigtable table");
                    return Ok(());
                }
                self.unary("get table", get).await?.unwrap_or_default()
            }
        };
        let missing: Vec<&String> = families.iter().filter(|f| !table.column_families.contains_key(*f)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let modify = || async {
            let request = admin::ModifyColumnFamiliesRequest {
                name: self.table_name.clone(),
                modifications: missing
                    .iter()
                    .map(|f| admin::modify_column_families_request::Modification {
                        id: (*f).clone(),
                        r#mod: Some(admin::modify_column_families_request::modification::Mod::Create(family())),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            match self.admin.clone().modify_column_families(self.request(request, self.short_timeout).await?).await {
                Ok(_) => Ok(()),
                Err(s) if s.code() == Code::AlreadyExists => Ok(()),
                Err(s) => Err(s),
            }
        };
        self.unary("modify column families", modify).await?;
        tracing::info!(table = %self.table_name, ?missing, "added column families to the bigtable table");
        Ok(())
    }
}
