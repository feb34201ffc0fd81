//! The local dead-letter file: where a consumer puts a message the host can
//! never store (see [`isolate`](super::isolate)) when no dead-letter topic
//! is configured, so that it can acknowledge the message and go on without
//! losing it.
//!
//! One JSON object per line (JSON Lines), appended and flushed to disk
//! (`fsync`) before [`DeadLetterFile::append`] returns, so the message may
//! be acknowledged right after:
//!
//! ```json
//! {"time_ms":1700000000000,"source":{"topic":"metrics","partition":"3","offset":"1234"},
//!  "kind":"invalid input","reason":"…","payload_base64":"eyJ2ZXJzaW9uIjoi…"}
//! ```
//!
//! The payload is base64 (standard alphabet, padded): messages are bytes,
//! not always text. The file is created on the first dead letter (with its
//! directory), readable by its owner only since payloads may be sensitive,
//! and never rotated: the operator moves it away to replay or drop what it
//! holds.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use serde::Serialize;

/// A message given up on, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// When it was dead-lettered, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Where it came from (`topic`, `partition`, `offset`; `subscription`,
    /// `message_id` …), as the consumer names it.
    pub source: BTreeMap<String, String>,
    /// The error kind the host answered (`invalid input`, `panic` …).
    pub kind: String,
    /// The host's error message.
    pub reason: String,
    /// The message as received.
    #[serde(rename = "payload_base64", serialize_with = "base64_bytes")]
    pub payload: Vec<u8>,
}

fn base64_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

impl DeadLetter {
    /// A dead letter stamped now.
    pub fn now(source: BTreeMap<String, String>, error: &crate::PluginError, payload: Vec<u8>) -> Self {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        DeadLetter {
            time_ms,
            source,
            kind: error.kind.as_str().to_string(),
            reason: error.message.to_string(),
            payload,
        }
    }
}

/// An append-only JSON Lines file of dead letters, shared by the threads of
/// one consumer (appends are serialised).
#[derive(Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
    /// Opened on the first append; dropped after a failed one, to be opened
    /// again (the disk may have been replaced or freed meanwhile).
    file: Mutex<Option<File>>,
}

impl DeadLetterFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DeadLetterFile { path: path.into(), file: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and syncs it to disk. On failure the file is cut
    /// back to where it was, so a half-written line never precedes the
    /// next one; the caller must not acknowledge the message then.
    pub fn append(&self, letter: &DeadLetter) -> io::Result<()> {
        let mut line = serde_json::to_vec(letter).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        let Some(file) = guard.as_mut() else { return Err(io::Error::other("dead-letter file not open")) };
        let before = file.metadata()?.len();
        let written = file.write_all(&line).and_then(|()| file.sync_data());
        if written.is_err() {
            let _ = file.set_len(before);
            *guard = None;
        }
        written
    }

    fn open(&self) -> io::Result<File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PluginError;

    #[test]
    fn appends_one_json_line_per_letter_with_the_payload_in_base64() {
        let dir = std::env::temp_dir().join(format!("heroic-dead-letter-{}", std::process::id()));
        let path = dir.join("nested/dead.jsonl");
        let file = DeadLetterFile::new(&path);
        let source = BTreeMap::from([("topic".to_string(), "m".to_string()), ("offset".to_string(), "7".to_string())]);
        let error = PluginError::invalid_input("row key too long");
        file.append(&DeadLetter::now(source.clone(), &error, b"\x00bytes\xff".to_vec())).unwrap();
        file.append(&DeadLetter::now(source, &error, b"second".to_vec())).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["source"]["offset"], "7");
        assert_eq!(lines[0]["kind"], "invalid input");
        assert_eq!(lines[0]["reason"], "row key too long");
        let payload = base64::engine::general_purpose::STANDARD.decode(lines[0]["payload_base64"].as_str().unwrap());
        assert_eq!(payload.unwrap(), b"\x00bytes\xff");
        assert!(lines[1]["time_ms"].as_i64().unwrap() > 1_600_000_000_000);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_that_cannot_be_created_is_an_error_not_a_loss() {
        let file = DeadLetterFile::new("/proc/no-such-dir/dead.jsonl");
        let letter = DeadLetter::now(BTreeMap::new(), &PluginError::invalid_input("x"), Vec::new());
        assert!(file.append(&letter).is_err());
    }
}
