//! Logs, traces and metrics. Only the binary installs a subscriber. Logs go to stdout for `serve`
//! (the Functions host records stderr as errors) and to stderr otherwise, so tables and JSON stay
//! clean; `RUST_LOG` filters them (default `lrs_autopilot=info` for the servers, `=warn` for the
//! rest), as JSON lines with `LRS_LOG_FORMAT=json`. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! spans and the pipeline's metrics also go out over OTLP/HTTP (the standard `OTEL_*` variables
//! apply).

use std::sync::{Arc, OnceLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::logline::EscapingWriter;
use crate::pipeline::Metrics;

/// Keeps the OpenTelemetry providers alive; dropping it flushes and shuts them down.
#[derive(Default)]
pub struct Guard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

static METER: OnceLock<SdkMeterProvider> = OnceLock::new();

/// Installs the subscriber. Call once, before any runtime starts: the OTLP HTTP exporter uses a
/// blocking client that must be built off the async runtime's threads.
///
/// `to_stdout`: the Functions host records a handler's stderr as errors, so `serve` logs to stdout.
/// `default_filter` applies when `RUST_LOG` is unset: `info` for the servers, `warn` for the
/// interactive commands, whose own output is the point.
pub fn init(default_filter: &str, to_stdout: bool) -> Guard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LRS_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || -> Box<dyn std::io::Write> {
            let out: Box<dyn std::io::Write> = if to_stdout {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::stderr())
            };
            // JSON escapes control characters itself; a text line must not be split by input.
            if json {
                out
            } else {
                Box::new(EscapingWriter(out))
            }
        });
    let fmt = if json {
        fmt.json().boxed_layer()
    } else {
        fmt.boxed_layer()
    };
    let mut guard = Guard::default();
    let otel = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    if !otel {
        registry.init();
        return guard;
    }
    let resource = Resource::builder()
        .with_service_name("lrs-autopilot")
        .build();
    let tracer = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map(|exporter| {
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.clone())
                .build()
        });
    let meter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .build()
        .map(|exporter| {
            SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource)
                .build()
        });
    match tracer {
        Ok(provider) => {
            let layer =
                tracing_opentelemetry::layer().with_tracer(provider.tracer("lrs-autopilot"));
            registry.with(layer).init();
            guard.tracer = Some(provider);
        }
        Err(e) => {
            registry.init();
            tracing::warn!(error = %e, "otlp trace export disabled");
        }
    }
    match meter {
        Ok(provider) => {
            let _ = METER.set(provider.clone());
            guard.meter = Some(provider);
        }
        Err(e) => tracing::warn!(error = %e, "otlp metric export disabled"),
    }
    guard
}

/// A counter's name, description and how to read it.
type Instrument = (&'static str, &'static str, fn(&Metrics) -> u64);

/// Publishes a pipeline's counters as OpenTelemetry instruments (no-op without OTLP).
pub fn export_metrics(metrics: Arc<Metrics>) {
    let Some(provider) = METER.get() else { return };
    let meter = provider.meter("lrs-autopilot");
    let counters: [Instrument; 8] = [
        ("lrs.events.processed", "events recorded", |m| {
            m.events_processed.get()
        }),
        ("lrs.events.rejected", "events refused", |m| {
            m.events_rejected.get()
        }),
        (
            "lrs.validation.bytes_read",
            "bytes read to validate headers",
            |m| m.bytes_read.get(),
        ),
        ("lrs.starts", "LRS starts accepted", |m| m.lrs_starts.get()),
        ("lrs.completions", "completeRestore calls accepted", |m| {
            m.lrs_completions.get()
        }),
        (
            "lrs.cutover.lag_ms",
            "tail restored to completion sent, summed (ms)",
            |m| m.cutover_lag_ms.get(),
        ),
        ("lrs.alerts", "alerts raised", |m| m.alerts.get()),
        (
            "lrs.state.conflicts",
            "state writes retried after a race",
            |m| m.state_conflicts.get(),
        ),
    ];
    for (name, description, read) in counters {
        let m = metrics.clone();
        let _ = meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_callback(move |o| o.observe(read(&m), &[]))
            .build();
    }
    let m = metrics;
    let _ = meter
        .u64_observable_gauge("lrs.databases")
        .with_description("databases per phase")
        .with_callback(move |o| {
            if let Ok(phases) = m.phases.lock() {
                for (phase, n) in phases.iter() {
                    o.observe(*n as u64, &[KeyValue::new("phase", phase.clone())]);
                }
            }
        })
        .build();
}

trait BoxedLayer<S> {
    fn boxed_layer(self) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>;
}

impl<S, L> BoxedLayer<S> for L
where
    L: tracing_subscriber::Layer<S> + Send + Sync + 'static,
    S: tracing::Subscriber,
{
    fn boxed_layer(self) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync> {
        Box::new(self)
    }
}
