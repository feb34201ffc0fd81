//! What [`crate::export_plugin!`] expands to: the root module of a plugin
//! library, built from the types the author names.

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RString;
use serde::de::DeserializeOwned;
use std::sync::Arc;

use crate::error::{PluginError, PluginResult};
use crate::ffi::*;
use crate::sdk::adapters::*;
use crate::sdk::runtime::{guard, guard_future, guard_or, ready_ffi, spawn_ffi};
use crate::sdk::traits::*;

/// Parses a component's config. Going through `serde_json::Value` keeps
/// JSON line/column positions (meaningless to someone who wrote TOML) out of
/// the message, which names the offending key.
pub fn parse_config<C: DeserializeOwned>(config_json: &str) -> PluginResult<C> {
    let value: serde_json::Value = serde_json::from_str(config_json)
        .map_err(|e| PluginError::config(format_args!("config is not valid JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| PluginError::config(format_args!("invalid config: {e}")))
}

/// Parses the config, then builds the component on the plugin runtime.
fn create<C, T, F>(config_json: RString, build: impl FnOnce(C) -> F) -> PluginFuture<T>
where
    C: DeserializeOwned,
    T: Send + 'static,
    F: std::future::Future<Output = PluginResult<T>> + Send + 'static,
{
    // Guarded as a whole: this runs inside an `extern "C"` entry point.
    guard_future(|| match parse_config::<C>(&config_json) {
        Ok(config) => spawn_ffi(build(config)),
        Err(e) => ready_ffi(Err(e)),
    })
}

pub extern "C" fn create_metric<B: MetricBackend>(config: RString) -> PluginFuture<MetricBackendBox> {
    create(config, |c| async move {
        let backend = B::create(c).await?;
        Ok(MetricBackendFfi_TO::from_value(MetricAdapter(Arc::new(backend)), TD_Opaque))
    })
}

pub extern "C" fn create_metadata<B: MetadataBackend>(config: RString) -> PluginFuture<MetadataBackendBox> {
    create(config, |c| async move {
        let backend = B::create(c).await?;
        Ok(MetadataBackendFfi_TO::from_value(MetadataAdapter(Arc::new(backend)), TD_Opaque))
    })
}

pub extern "C" fn create_suggest<B: SuggestBackend>(config: RString) -> PluginFuture<SuggestBackendBox> {
    create(config, |c| async move {
        let backend = B::create(c).await?;
        Ok(SuggestBackendFfi_TO::from_value(SuggestAdapter(Arc::new(backend)), TD_Opaque))
    })
}

pub extern "C" fn create_consumer<C: Consumer>(config: RString) -> PluginFuture<ConsumerBox> {
    create(config, |c| async move {
        let consumer = C::create(c).await?;
        Ok(ConsumerFfi_TO::from_value(ConsumerAdapter(Arc::new(consumer)), TD_Opaque))
    })
}

fn not_provided<T: Send + 'static>(kind: &str) -> PluginFuture<T> {
    guard_future(|| ready_ffi(Err(PluginError::unsupported(&format!("this plugin provides no {kind}")))))
}

pub extern "C" fn no_metric(_: RString) -> PluginFuture<MetricBackendBox> {
    not_provided("metric backend")
}

pub extern "C" fn no_metadata(_: RString) -> PluginFuture<MetadataBackendBox> {
    not_provided("metadata backend")
}

pub extern "C" fn no_suggest(_: RString) -> PluginFuture<SuggestBackendBox> {
    not_provided("suggest backend")
}

pub extern "C" fn no_consumer(_: RString) -> PluginFuture<ConsumerBox> {
    not_provided("consumer")
}

/// Called by the `info` entry point the export macro generates.
pub fn info(name: &'static str, version: &'static str, kinds: PluginKinds, unwinds: bool) -> PluginInfo {
    let build = BuildFlags(if unwinds { BuildFlags::PANIC_UNWIND } else { 0 });
    // Guarded like every entry point; building two short strings cannot
    // really fail, but a panic here must not cross the boundary either.
    guard_or(
        |_| PluginInfo { name: RString::new(), version: RString::new(), kinds, build },
        || PluginInfo { name: name.into(), version: version.into(), kinds, build },
    )
}

/// Called by the `init` entry point the export macro generates.
pub fn init(ctx: HostContext, plugin: &'static str) {
    let _ = guard(|| {
        crate::sdk::logging::init(ctx, plugin);
        Ok(())
    });
}

/// Exports a plugin library's root module.
///
/// ```ignore
/// heroic_plugin_api::export_plugin! {
///     name: "my-backend",
///     metrics: MyMetricBackend,
///     // metadata: …, suggest: …, consumer: … (each optional)
/// }
/// ```
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:literal
        $(, metrics: $metric:ty)?
        $(, metadata: $metadata:ty)?
        $(, suggest: $suggest:ty)?
        $(, consumer: $consumer:ty)?
        $(,)?
    ) => {
        // A plugin built with `panic = "abort"` would turn every panic the
        // SDK catches into an abort of the whole host: refuse to build it.
        // (`cfg` is evaluated here, in the plugin crate; the host also
        // refuses such a library at load time, from `PluginInfo::build`.)
        #[cfg(panic = "abort")]
        compile_error!(
            "heroic plugins must be built with `panic = \"unwind\"`: with `panic = \"abort\"` a panic in the \
             plugin would abort the whole host. Set `panic = \"unwind\"` in the `[profile.*]` sections of the \
             workspace's Cargo.toml."
        );

        #[doc(hidden)]
        extern "C" fn __heroic_plugin_info() -> $crate::ffi::PluginInfo {
            use $crate::ffi::PluginKinds;
            let kinds = PluginKinds(
                0 $(| { let _ = stringify!($metric); PluginKinds::METRIC })?
                  $(| { let _ = stringify!($metadata); PluginKinds::METADATA })?
                  $(| { let _ = stringify!($suggest); PluginKinds::SUGGEST })?
                  $(| { let _ = stringify!($consumer); PluginKinds::CONSUMER })?
            );
            let unwinds = cfg!(panic = "unwind");
            $crate::sdk::export::info($name, env!("CARGO_PKG_VERSION"), kinds, unwinds)
        }

        #[doc(hidden)]
        extern "C" fn __heroic_plugin_init(ctx: $crate::ffi::HostContext) {
            $crate::sdk::export::init(ctx, $name)
        }

        #[doc(hidden)]
        fn __heroic_plugin_module() -> $crate::ffi::PluginModuleRef {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::ffi::PluginModule {
                info: __heroic_plugin_info,
                init: __heroic_plugin_init,
                create_metric_backend: $crate::__heroic_create_fn!(create_metric, no_metric $(, $metric)?),
                create_metadata_backend: $crate::__heroic_create_fn!(create_metadata, no_metadata $(, $metadata)?),
                create_suggest_backend: $crate::__heroic_create_fn!(create_suggest, no_suggest $(, $suggest)?),
                create_consumer: $crate::__heroic_create_fn!(create_consumer, no_consumer $(, $consumer)?),
            }
            .leak_into_prefix()
        }

        // What `#[abi_stable::export_root_module]` generates, written out so
        // that a plugin needs no direct dependency on abi_stable. The symbol
        // name is checked against abi_stable's by a test in heroic-plugin-api.
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __HEROIC_PLUGIN_LIB_HEADER: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased_module() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(__heroic_plugin_module)
            }
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::ffi::PluginModuleRef>(
                    erased_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __heroic_create_fn {
    ($create:ident, $none:ident) => {
        $crate::sdk::export::$none
    };
    ($create:ident, $none:ident, $t:ty) => {
        $crate::sdk::export::$create::<$t>
    };
}
