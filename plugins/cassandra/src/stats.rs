//! Counters reported through `statistics()` (`GET /status`, the shell's
//! `statistics` task), declared with the SDK's counter set so that the
//! list of names cannot drift from the fields.

use heroic_plugin_api::sdk::support::Counter;

heroic_plugin_api::counter_set! {
    /// What the backend counts; shared by the client and the backend.
    #[derive(Debug, Default)]
    pub struct Stats {
        /// Points written.
        pub points_written: Counter,
        /// Write batches sent (attempts, retries included).
        pub write_batches: Counter,
        /// Read queries started (attempts, retries included).
        pub read_queries: Counter,
        /// Points returned by fetches.
        pub points_read: Counter,
        /// Points deleted.
        pub points_deleted: Counter,
        /// Row keys returned by key listings.
        pub keys_listed: Counter,
        /// Requests sent again after a transient failure.
        pub retries: Counter,
        /// Requests that failed for good with a timeout.
        pub timeouts: Counter,
        /// Requests that failed for good (after retries).
        pub errors: Counter,
        /// Series refused because their row key reached 64 KiB.
        pub row_key_too_large: Counter,
        /// Points refused because they lie outside the timestamp window.
        pub points_out_of_window: Counter,
        /// Row keys or cells that did not decode (foreign data in the table).
        pub invalid_rows: Counter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_reported_under_its_documented_name() {
        let stats = Stats::default();
        stats.points_read.add(4);
        let names: Vec<String> = stats.statistics().iter().map(|s| s.name.to_string()).collect();
        // The names the README lists (and dashboards use).
        let documented = [
            "points_written",
            "write_batches",
            "read_queries",
            "points_read",
            "points_deleted",
            "keys_listed",
            "retries",
            "timeouts",
            "errors",
            "row_key_too_large",
            "points_out_of_window",
            "invalid_rows",
        ];
        assert_eq!(names, documented);
        assert_eq!(stats.statistics()[3].value, 4.0);
    }
}
