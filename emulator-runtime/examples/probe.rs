//! A tiny Lambda function that reports what its execution environment looks like (process,
//! tenant, temporary directory, memory), so the emulator's isolation tests and benchmark can run
//! a real `lambda_runtime` bootstrap.

use std::io::{Read as _, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// What `remember` keeps in this process: visible to later invokes of the same environment only.
static MEMORY: Mutex<Option<String>> = Mutex::new(None);

/// Variables `whoami` reports, so tests can check what Lambda's environment contract gives.
const REPORTED_VARS: &[&str] = &[
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "TZ",
    "PATH",
    "HOME",
    "PROBE_VAR",
];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    if let Some(ms) = std::env::var("PROBE_INIT_SLEEP_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if std::env::var("PROBE_INIT_FAIL").as_deref() == Ok("1") {
        eprintln!("probe: init failing because PROBE_INIT_FAIL=1");
        report_init_error("probe init failed: PROBE_INIT_FAIL is set");
        std::process::exit(1);
    }
    lambda_runtime::run(service_fn(handler)).await
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (input, context) = event.into_parts();
    // An API Gateway REST proxy event: run the op its `op` query string parameter names (`raw`
    // answers whoami without the proxy response shape) and answer with a proxy response whose
    // body holds the op's answer and the event as the function received it.
    // An API Gateway TOKEN authorizer event: `allow:TENANT` allows the call and hands TENANT to
    // the integration as `context.authorizer.tenant`; any other token is denied explicitly.
    if input["type"] == "TOKEN" {
        let token = input["authorizationToken"].as_str().unwrap_or_default();
        let (effect, tenant) = match token.strip_prefix("allow:") {
            Some(tenant) => ("Allow", tenant),
            None => ("Deny", ""),
        };
        return Ok(json!({
            "principalId": "probe",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Action": "execute-api:Invoke",
                    "Effect": effect,
                    "Resource": input["methodArn"],
                }],
            },
            "context": { "tenant": tenant },
        }));
    }
    if input.get("requestContext").is_some() && input.get("httpMethod").is_some() {
        let op = input["queryStringParameters"]["op"]
            .as_str()
            .unwrap_or("whoami")
            .to_string();
        if op == "raw" {
            return run(json!({ "op": "whoami" }), context).await;
        }
        let answer = run(json!({ "op": op }), context).await?;
        return Ok(json!({
            "statusCode": 200,
            "headers": { "content-type": "application/json", "x-probe": "proxy" },
            "body": json!({ "answer": answer, "event": input }).to_string(),
        }));
    }
    run(input, context).await
}

async fn run(input: Value, context: lambda_runtime::Context) -> Result<Value, Diagnostic> {
    let tmpdir = std::env::var("TMPDIR").unwrap_or_default();
    match input["op"].as_str().unwrap_or("whoami") {
        "whoami" => {
            let env: serde_json::Map<String, Value> = REPORTED_VARS
                .iter()
                .filter_map(|name| Some((name.to_string(), json!(std::env::var(name).ok()?))))
                .collect();
            Ok(json!({
                "pid": std::process::id(),
                "tenant": context.tenant_id,
                "tmpdir": tmpdir,
                "request_id": context.request_id,
                "env": env,
            }))
        }
        "remember" => {
            let value = input["value"].as_str().unwrap_or_default().to_owned();
            std::fs::write(format!("{tmpdir}/remembered"), &value).map_err(failure)?;
            *MEMORY.lock().map_err(failure)? = Some(value);
            Ok(json!({ "pid": std::process::id(), "tenant": context.tenant_id }))
        }
        "recall" => {
            let memory = MEMORY.lock().map_err(failure)?.clone();
            let file = std::fs::read_to_string(format!("{tmpdir}/remembered")).ok();
            Ok(json!({
                "pid": std::process::id(),
                "tenant": context.tenant_id,
                "memory": memory,
                "file": file,
            }))
        }
        "sleep" => {
            let ms = input["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!({ "pid": std::process::id(), "tenant": context.tenant_id, "slept_ms": ms }))
        }
        "fail" => Err(Diagnostic {
            error_type: "ProbeFailure".into(),
            error_message: "the probe was asked to fail".into(),
        }),
        "crash" => std::process::exit(3),
        "log" => {
            let lines = input["lines"].as_u64().unwrap_or(1);
            let mut stdout = std::io::stdout().lock();
            for line in 0..lines {
                writeln!(stdout, "probe log line {line}").map_err(failure)?;
            }
            stdout.flush().map_err(failure)?;
            Ok(json!({ "pid": std::process::id(), "lines": lines }))
        }
        other => Err(Diagnostic {
            error_type: "ProbeUnknownOp".into(),
            error_message: format!("unknown op `{other}`"),
        }),
    }
}

fn failure(err: impl std::fmt::Display) -> Diagnostic {
    Diagnostic {
        error_type: "ProbeFailure".into(),
        error_message: err.to_string(),
    }
}

/// Posts an init error the way managed runtimes do, since `lambda_runtime` only reports init
/// failures for SnapStart. A plain HTTP/1.0 request keeps the probe free of client crates.
fn report_init_error(message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = json!({ "errorType": "Runtime.InitError", "errorMessage": message }).to_string();
    let Ok(mut stream) = std::net::TcpStream::connect(&api) else {
        return;
    };
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.0\r\nHost: {api}\r\nContent-Type: application/json\r\nLambda-Runtime-Function-Error-Type: Runtime.InitError\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
    }
}
