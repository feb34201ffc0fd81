//! Forwards the plugin's `tracing` events to the host.
//!
//! A plugin's tracing state is its own copy: without a subscriber installed
//! here its events would vanish. This layer formats each event and hands it
//! to the callback the host passed in `init`; the host re-emits it with the
//! plugin's name attached.

use std::fmt::Write as _;
use std::sync::OnceLock;

use abi_stable::std_types::RStr;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::ffi::{HostContext, LogLevel, LogRecord};

static HOST: OnceLock<(HostContext, &'static str)> = OnceLock::new();

/// Installs the forwarding subscriber and a panic hook that logs panics
/// through it. Safe to call more than once; the first call wins.
pub fn init(ctx: HostContext, plugin: &'static str) {
    if HOST.set((ctx, plugin)).is_err() {
        return;
    }
    let max = match ctx.max_level {
        LogLevel::Error => Level::ERROR,
        LogLevel::Warn => Level::WARN,
        LogLevel::Info => Level::INFO,
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Trace => Level::TRACE,
    };
    let subscriber = tracing_subscriber::registry()
        .with(ForwardLayer)
        .with(tracing_subscriber::filter::LevelFilter::from_level(max));
    let _ = tracing::subscriber::set_global_default(subscriber);
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(target: "panic", "{info}");
    }));
}

struct ForwardLayer;

impl<S: Subscriber> Layer<S> for ForwardLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some((host, plugin)) = HOST.get() else { return };
        let mut visitor = FieldsVisitor::default();
        event.record(&mut visitor);
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            Level::TRACE => LogLevel::Trace,
        };
        (host.log)(LogRecord {
            plugin: RStr::from_str(plugin),
            level,
            target: RStr::from_str(meta.target()),
            message: RStr::from_str(&visitor.message),
            fields: RStr::from_str(visitor.fields.trim_start()),
        });
    }
}

#[derive(Default)]
struct FieldsVisitor {
    message: String,
    fields: String,
}

impl Visit for FieldsVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}
