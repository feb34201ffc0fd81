//! Counters reported through `statistics()` (`GET /status`, the shell's
//! `statistics` task), declared with the SDK's counter set so that the
//! list of names cannot drift from the fields.

use heroic_plugin_api::sdk::support::{Counter, Gauge};

heroic_plugin_api::counter_set! {
    /// What the backend counts; shared by the client, the bulk writer and
    /// the backend.
    #[derive(Default, Debug)]
    pub struct Stats {
        /// Points written (applied).
        pub points_written: Counter,
        /// Distribution samples written (applied).
        pub samples_written: Counter,
        /// Distribution samples returned by fetches.
        pub samples_read: Counter,
        /// Cell mutations applied by writes.
        pub row_mutations: Counter,
        /// MutateRows calls (attempts, retries included).
        pub mutate_rpcs: Counter,
        /// ReadRows calls (attempts, resumptions included).
        pub read_rpcs: Counter,
        /// Rows read.
        pub rows_read: Counter,
        /// Points returned by fetches.
        pub points_read: Counter,
        /// Points deleted.
        pub points_deleted: Counter,
        /// Retries of failed calls or entries.
        pub retries: Counter,
        /// Attempts that ran out of time.
        pub timeouts: Counter,
        /// Calls that failed for good (after retries).
        pub errors: Counter,
        /// Series refused because their row key reached 4,000 bytes.
        pub row_key_too_large: Counter,
        /// Cells or row keys that did not decode (foreign data in the table).
        pub invalid_cells: Counter,
        /// Batches the bulk writer sent (each one MutateRows call, plus the
        /// retries of its failed entries).
        pub bulk_flushes: Counter,
        /// Writes that had to wait for room in the bulk writer's buffer.
        pub bulk_waits: Counter,
        /// Cell mutations handed to the bulk writer and not applied yet
        /// (buffered or in a MutateRows call in flight).
        pub buffered_mutations: Gauge,
    }
}
