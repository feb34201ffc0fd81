//! The host's log, and the callback through which plugins log into it.

use heroic_plugin_api::ffi::{LogLevel, LogRecord};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Starts logging to stderr. `RUST_LOG` overrides the default `info`;
/// `HEROIC_LOG_FORMAT=json` switches to one JSON object per line.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,warp::filters::trace=error"));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let result = if std::env::var("HEROIC_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}

/// The most verbose level the host would print, so plugins do not format
/// events that would be dropped anyway.
pub fn max_level() -> LogLevel {
    match LevelFilter::current() {
        LevelFilter::TRACE => LogLevel::Trace,
        LevelFilter::DEBUG => LogLevel::Debug,
        LevelFilter::INFO => LogLevel::Info,
        LevelFilter::WARN => LogLevel::Warn,
        _ => LogLevel::Error,
    }
}

/// Re-emits a plugin's log event in the host's log, with the plugin's name.
///
/// Called by plugins across `extern "C"`, where a panic would abort the
/// process: an event that cannot be logged is dropped instead.
pub extern "C" fn plugin_log(record: LogRecord<'_>) {
    let _ = std::panic::catch_unwind(|| emit(record));
}

fn emit(record: LogRecord<'_>) {
    let plugin = record.plugin.as_str();
    let target = record.target.as_str();
    let message = record.message.as_str();
    let fields = record.fields.as_str();
    macro_rules! emit {
        ($level:expr) => {
            if fields.is_empty() {
                tracing::event!(target: "plugin", $level, plugin, module = target, "{message}")
            } else {
                tracing::event!(target: "plugin", $level, plugin, module = target, "{message} {fields}")
            }
        };
    }
    match record.level {
        LogLevel::Error => emit!(tracing::Level::ERROR),
        LogLevel::Warn => emit!(tracing::Level::WARN),
        LogLevel::Info => emit!(tracing::Level::INFO),
        LogLevel::Debug => emit!(tracing::Level::DEBUG),
        LogLevel::Trace => emit!(tracing::Level::TRACE),
    }
}
