//! Platform log lines (START, END, REPORT and their JSON forms), log stream names and the
//! per-invocation tail that `X-Amz-Log-Type: Tail` returns.

use std::time::Duration;

use base64::Engine as _;

use super::{FunctionSpec, LogFormat};
use crate::clock;

/// Lambda returns at most this many bytes of log in `X-Amz-Log-Result`.
const TAIL_BYTES: usize = 4096;

/// `YYYY/MM/DD/[$LATEST]<32 hex>`: one stream per execution environment, as Lambda names them.
pub(crate) fn log_stream_name(version: &str, env_hex: &str) -> String {
    let (year, month, day) = clock::date(clock::now_millis());
    format!("{year:04}/{month:02}/{day:02}/[{version}]{env_hex}")
}

/// How an invocation ended, for `platform.report`'s `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Success,
    Error,
    Timeout,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    }
}

pub(crate) struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub max_memory_mb: u64,
    pub init: Option<Duration>,
    pub status: Status,
    pub tenant: Option<&'a str>,
}

pub(crate) fn start_line(spec: &FunctionSpec, request_id: &str, tenant: Option<&str>) -> String {
    match spec.log_format {
        LogFormat::Text => format!("START RequestId: {request_id} Version: {}", spec.version),
        LogFormat::Json => {
            let mut record = serde_json::json!({
                "requestId": request_id,
                "functionArn": spec.arn,
                "version": spec.version,
            });
            if let Some(tenant) = tenant {
                record["tenantId"] = tenant.into();
            }
            platform_event("platform.start", record)
        }
    }
}

pub(crate) fn end_line(
    spec: &FunctionSpec,
    request_id: &str,
    status: Status,
    tenant: Option<&str>,
) -> String {
    match spec.log_format {
        LogFormat::Text => format!("END RequestId: {request_id}"),
        LogFormat::Json => {
            let mut record = serde_json::json!({
                "requestId": request_id,
                "status": status.as_str(),
            });
            if let Some(tenant) = tenant {
                record["tenantId"] = tenant.into();
            }
            platform_event("platform.runtimeDone", record)
        }
    }
}

pub(crate) fn report_line(spec: &FunctionSpec, report: &Report<'_>) -> String {
    let duration_ms = report.duration.as_secs_f64() * 1000.0;
    // Lambda bills by the started millisecond, never less than one.
    let billed_ms = (duration_ms.ceil() as u64).max(1);
    match spec.log_format {
        LogFormat::Text => {
            let mut line = format!(
                "REPORT RequestId: {}\tDuration: {duration_ms:.2} ms\tBilled Duration: {billed_ms} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
                report.request_id, spec.memory_mb, report.max_memory_mb
            );
            if let Some(init) = report.init {
                line.push_str(&format!(
                    "\tInit Duration: {:.2} ms",
                    init.as_secs_f64() * 1000.0
                ));
            }
            line
        }
        LogFormat::Json => {
            let mut metrics = serde_json::json!({
                "durationMs": round2(duration_ms),
                "billedDurationMs": billed_ms,
                "memorySizeMB": spec.memory_mb,
                "maxMemoryUsedMB": report.max_memory_mb,
            });
            if let Some(init) = report.init {
                metrics["initDurationMs"] = round2(init.as_secs_f64() * 1000.0).into();
            }
            let mut record = serde_json::json!({
                "requestId": report.request_id,
                "metrics": metrics,
                "status": report.status.as_str(),
            });
            if let Some(tenant) = report.tenant {
                record["tenantId"] = tenant.into();
            }
            platform_event("platform.report", record)
        }
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn platform_event(kind: &str, record: serde_json::Value) -> String {
    serde_json::json!({ "time": clock::iso8601_millis(clock::now_millis()), "type": kind, "record": record }).to_string()
}

/// The lines of one invocation, START to REPORT, kept only when the caller asked for a tail.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    text: String,
}

impl Tail {
    pub(crate) fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
        // Drop the front once the buffer is well past the limit, so a chatty function cannot
        // grow it without bound; `finish` trims to the exact size.
        if self.text.len() > TAIL_BYTES * 4 {
            let cut = floor_char_boundary(&self.text, self.text.len() - TAIL_BYTES);
            self.text.drain(..cut);
        }
    }

    /// Base64 of the last 4 KB, as `X-Amz-Log-Result` carries it.
    pub(crate) fn finish(self) -> String {
        let start = self.text.len().saturating_sub(TAIL_BYTES);
        let start = ceil_char_boundary(&self.text, start);
        base64::engine::general_purpose::STANDARD.encode(&self.text.as_bytes()[start..])
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_char_boundary(text: &str, mut index: usize) -> usize {
    while index < text.len() && !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

/// Peak resident memory of a process in MB (`VmHWM`), as REPORT's "Max Memory Used", from its
/// `/proc/<pid>/status` kept open (a read per invoke, no open and close).
pub(crate) fn max_memory_mb(status: Option<&std::fs::File>) -> u64 {
    use std::os::unix::fs::FileExt;
    // VmHWM is among the first lines; the whole file is about 1.5 KB.
    let mut buf = [0u8; 4096];
    let Some(len) = status.and_then(|file| file.read_at(&mut buf, 0).ok()) else {
        return 0;
    };
    String::from_utf8_lossy(&buf[..len])
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_four_kilobytes() {
        let mut tail = Tail::default();
        tail.push("START RequestId: first");
        for _ in 0..200 {
            tail.push(&"x".repeat(100));
        }
        tail.push("REPORT RequestId: last");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(tail.finish())
            .expect("tail is base64");
        let text = String::from_utf8(decoded).expect("tail is UTF-8");
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("REPORT RequestId: last\n"));
        assert!(!text.contains("START"));
    }
}
