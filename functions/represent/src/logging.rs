//! Log lines as Lambda's JSON log format expects them, with the invoke's `tenantId` (and
//! `requestId`) lifted to the top level of every line, so that a CloudWatch filter such as
//! `{ $.tenantId = "TX" }` finds everything one state's environments wrote.
//!
//! The runtime opens a span with `requestId` and `tenantId` around every invoke; the stock JSON
//! formatter nests span fields under `span`/`spans`, where such a filter cannot see them. The
//! formatter here flattens span fields, then the event's own fields, into one object.

use std::fmt;
use std::io;

use lambda_runtime::tracing::subscriber::{
    self as ts, EnvFilter,
    filter::LevelFilter,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter, format::JsonFields,
        format::Writer,
    },
    registry::LookupSpan,
};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};

/// Installs the process's logger: flat JSON lines on stdout when the function is configured
/// with `AWS_LAMBDA_LOG_FORMAT=JSON` (as the deployer does), the runtime's text format otherwise.
/// The level comes from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then INFO.
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if !json {
        lambda_runtime::tracing::init_default_subscriber();
        return;
    }
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    tracing::subscriber::set_global_default(json_subscriber(io::stdout, level))
        .expect("the logger is installed once, first thing in main");
}

/// The flat JSON subscriber writing to `writer`; `init` uses stdout, tests a buffer.
pub fn json_subscriber<W>(writer: W, level: LevelFilter) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    ts::fmt()
        .with_env_filter(
            EnvFilter::builder()
                .with_default_directive(level.into())
                .parse_lossy(""),
        )
        .fmt_fields(JsonFields::new())
        .event_format(FlatJson)
        .with_writer(writer)
        .finish()
}

/// One JSON object per line: `level`, `target`, the fields of every enclosing span (outermost
/// first), then the event's fields, `message` included. Later fields win on a name clash.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("target".into(), event.metadata().target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                // With `JsonFields`, a span's recorded fields are a JSON object.
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str(&fields.fields)
                {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut FieldVisitor(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct FieldVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for FieldVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// A log sink for tests, shared with the handler's tests.
#[cfg(test)]
pub(crate) mod capture {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    #[derive(Clone, Default)]
    pub(crate) struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .expect("log buffer lock")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Every line written so far, parsed.
    pub(crate) fn lines(buffer: &Buffer) -> Vec<Value> {
        let bytes = buffer.0.lock().expect("log buffer lock").clone();
        String::from_utf8(bytes)
            .expect("utf-8 logs")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::capture::{Buffer, lines};
    use super::*;

    #[test]
    fn the_runtime_span_tenant_is_a_top_level_field_of_every_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = json_subscriber(move || writer.clone(), LevelFilter::INFO);
        tracing::subscriber::with_default(subscriber, || {
            let mut context = lambda_runtime::Context::default();
            context.request_id = "req-1".to_string();
            context.tenant_id = Some("TX".to_string());
            // The very span the runtime opens around each invoke.
            let span = lambda_runtime::layers::trace::request_span(&context);
            let _entered = span.enter();
            tracing::info!(status = 200u16, durationMs = 1.5, "request");
            tracing::warn!(error = %"boom", "something else");
            tracing::debug!("below the level, not written");
        });
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 2, "{lines:?}");
        for line in &lines {
            assert_eq!(line["tenantId"], "TX", "{line}");
            assert_eq!(line["requestId"], "req-1", "{line}");
        }
        assert_eq!(lines[0]["message"], "request");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["durationMs"], 1.5);
        assert_eq!(lines[1]["error"], "boom");
        assert_eq!(lines[1]["level"], "WARN");
    }
}
