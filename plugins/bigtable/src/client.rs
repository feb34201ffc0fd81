//! A small Bigtable client on tonic: connecting (plaintext to an emulator,
//! TLS with OAuth2 tokens to Google), ReadRows with resumption, MutateRows
//! retrying only the failed entries, and the table admin calls `configure`
//! needs. Every call has a deadline and retries transient failures with
//! the SDK's backoff (exponential, jitter, Google's `RetryInfo` honoured).

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use googleapis_tonic_google_bigtable_admin_v2::google::bigtable::admin::v2 as admin;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2 as data;
use heroic_gcp::{connect, Auth};
use heroic_plugin_api::sdk::support::{Backoff, RetryPolicy};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};

use admin::bigtable_table_admin_client::BigtableTableAdminClient;
use data::bigtable_client::BigtableClient;

use crate::config::{BigtableConfig, Target};
use crate::error::{is_retryable, retry_hint, retry_hint_in, BigtableError, EntryTally};
use crate::read_rows::{resume_after, Row, RowAssembler};
use crate::stats::Stats;

const SCOPES: &[&str] =
    &["https://www.googleapis.com/auth/bigtable.data", "https://www.googleapis.com/auth/bigtable.admin.table"];

/// Bigtable answers can be large (a row of a busy series holds up to 2^32
/// cells); tonic's 4 MiB default would fail such reads.
const MAX_MESSAGE_BYTES: usize = 256 << 20;

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
            retry: config.retry_policy(),
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
        let (retryable, hint) = match &failure {
            Failure::TimedOut => {
                self.stats.timeouts.inc();
                (true, None)
            }
            Failure::Status(s) => (is_retryable(s.code()), retry_hint(s)),
        };
        let attempts = backoff.attempts();
        if retryable {
            if let Some(delay) = backoff.next_delay(hint) {
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
        let mut backoff = self.retry.backoff();
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
        let mut backoff = self.retry.backoff();
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
                let mut stream =
                    self.data.clone().read_rows(self.request(message, self.read_timeout).await?).await?.into_inner();
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
    pub async fn mutate_rows_each(&self, entries: Vec<data::mutate_rows_request::Entry>) -> Vec<Option<BigtableError>> {
        let mut outcome: Vec<Option<BigtableError>> = vec![None; entries.len()];
        // (index in `entries`, entry) of the entries not applied yet.
        let mut pending: Vec<(usize, data::mutate_rows_request::Entry)> = entries.into_iter().enumerate().collect();
        let mut backoff = self.retry.backoff();
        loop {
            let message = data::MutateRowsRequest {
                table_name: self.table_name.clone(),
                app_profile_id: self.profile.clone(),
                entries: pending.iter().map(|(_, e)| e.clone()).collect(),
                ..Default::default()
            };
            self.stats.mutate_rpcs.inc();
            let attempt = async {
                let mut stream = self
                    .data
                    .clone()
                    .mutate_rows(self.request(message, self.mutate_timeout).await?)
                    .await?
                    .into_inner();
                // Each entry's status, with the wait its `RetryInfo` asks for.
                let mut statuses: Vec<Option<(Status, Option<Duration>)>> = vec![None; pending.len()];
                while let Some(response) = stream.message().await? {
                    for entry in response.entries {
                        let status = entry.status.unwrap_or_default();
                        let hint =
                            retry_hint_in(status.details.iter().map(|d| (d.type_url.as_str(), d.value.as_slice())));
                        if let Some(slot) = usize::try_from(entry.index).ok().and_then(|i| statuses.get_mut(i)) {
                            *slot = Some((Status::new(Code::from(status.code), status.message), hint));
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
                    // The longest wait any retried entry asks for.
                    let mut hint: Option<Duration> = None;
                    for ((index, entry), status) in std::mem::take(&mut pending).into_iter().zip(statuses) {
                        match status {
                            Some((s, _)) if s.code() == Code::Ok => {}
                            Some((s, _)) if !is_retryable(s.code()) => outcome[index] = Some(entry_error(s)),
                            // An entry the server did not report on is
                            // treated as unavailable: retrying it is harmless.
                            s => {
                                let (status, entry_hint) = s
                                    .unwrap_or_else(|| (Status::unavailable("no status reported for the entry"), None));
                                hint = hint.max(entry_hint);
                                last = Some(status);
                                retry.push((index, entry));
                            }
                        }
                    }
                    pending = retry;
                    match last {
                        None => break,
                        Some(status) => match backoff.next_delay(hint) {
                            Some(delay) => {
                                self.stats.retries.inc();
                                tracing::debug!(
                                    entries = pending.len(),
                                    attempts,
                                    ?delay,
                                    "retrying failed mutate rows entries"
                                );
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
            let request =
                admin::GetTableRequest { name: self.table_name.clone(), view: admin::table::View::SchemaView as i32 };
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
