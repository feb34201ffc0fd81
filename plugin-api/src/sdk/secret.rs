//! [`Secret`]: a config value (a password, a token) that never shows up in
//! `Debug` or `Display` output, so configs can keep deriving `Debug` and be
//! logged without leaking credentials; and [`is_secret_key`], the same rule
//! for map-shaped configs whose keys are not known in advance (librdkafka
//! properties).
//!
//! ```
//! use heroic_plugin_api::sdk::Secret;
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Auth {
//!     username: String,
//!     password: Secret,
//! }
//!
//! let auth: Auth = serde_json::from_str(r#"{"username": "u", "password": "hunter2"}"#).unwrap();
//! assert_eq!(auth.password.expose(), "hunter2");
//! assert!(!format!("{auth:?}").contains("hunter2"));
//! ```

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// What a secret prints as, in `Debug` and `Display` alike.
pub const REDACTED: &str = "<redacted>";

/// A string that must not be printed: deserializes from a plain string,
/// prints as `<redacted>`, and gives its value only through
/// [`expose`](Secret::expose), so every place that uses the value is easy to
/// find. Deliberately not `Serialize`: nothing should write it back out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it (a login, a header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `any`, not `string`: deserializers answer a non-string given to
        // `deserialize_string` with their own message, which quotes the value.
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts strings only. Serde's default messages for other types quote the
/// value ("invalid type: integer `1234`"), which would print a numeric
/// password given without quotes into the config error; these do not.
struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: de::Error>(&self, what: &'static str) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other(what), self))
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (quote it in the config)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        self.refuse("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        self.refuse("bytes")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Secret, E> {
        self.refuse("null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Secret, E> {
        self.refuse("null")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        self.refuse("a list")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        self.refuse("a table")
    }
}

/// Whether a free-form config key (a librdkafka property such as
/// `sasl.password`, `ssl.key.pem` or `sasl.oauthbearer.client.secret`)
/// names a value to redact. Errs on the side of redacting: a hidden
/// non-secret costs a look at the config file, a shown secret cannot be
/// taken back.
pub fn is_secret_key(key: &str) -> bool {
    const MARKERS: [&str; 9] = [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        // Inline PEM private keys (`ssl.key.pem`); `ssl.key.location` is a path.
        "key.pem",
        // Whole login configurations, which carry passwords inline.
        "jaas",
        "oauthbearer.config",
        "private",
    ];
    let key = key.to_ascii_lowercase();
    MARKERS.iter().any(|m| key.contains(m))
}

/// `value`, or [`REDACTED`] when `key` looks secret ([`is_secret_key`]).
pub fn redact_by_key<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret_key(key) {
        REDACTED
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_redacted_and_exposes_the_value() {
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s, Secret::from("hunter2"));
        assert_ne!(s, Secret::new("other"));
        assert!(Secret::default().is_empty());
    }

    #[test]
    fn non_strings_are_refused_without_quoting_them() {
        for json in ["12345678", "-12345678", "1234.5678", "true", "[12345678]", "{\"a\": 12345678}", "null"] {
            let e = serde_json::from_str::<Secret>(json).unwrap_err().to_string();
            assert!(e.contains("expected a string"), "{json}: {e}");
            assert!(!e.contains("1234") && !e.contains("true"), "{json}: {e}");
            // Plugins get their config as a `serde_json::Value` (parse_config).
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            let e = serde_json::from_value::<Secret>(value).unwrap_err().to_string();
            assert!(e.contains("expected a string") && !e.contains("1234"), "{json}: {e}");
        }
    }

    #[test]
    fn secret_keys() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.truststore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "ssl.key.pem",
            "sasl.jaas.config",
            "SASL.PASSWORD",
            "api_token",
        ] {
            assert!(is_secret_key(key), "{key}");
            assert_eq!(redact_by_key(key, "v"), REDACTED);
        }
        for key in ["bootstrap.servers", "sasl.username", "ssl.key.location", "ssl.ca.location", "group.id"] {
            assert!(!is_secret_key(key), "{key}");
            assert_eq!(redact_by_key(key, "v"), "v");
        }
    }
}
