//! A Python client against the emulator, for what boto3 sends differently from the Rust SDK:
//! its condition builders wrap each part of a key condition in parentheses. boto3 comes from
//! PyPI into the project's tool directory (`.tools/boto3`) the first time this runs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

/// The boto3 release the check runs with.
const BOTO3_VERSION: &str = "1.44.5";

/// The project's Python with boto3, installing it first when it is missing.
fn python_with_boto3() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tools = root.join(".tools");
    let venv = tools.join("boto3");
    let python = venv.join("bin").join("python3");
    let marker = venv.join(format!(".boto3-{BOTO3_VERSION}"));
    if marker.is_file() {
        return python;
    }
    std::fs::create_dir_all(&tools).expect("create .tools");
    // Test binaries run tests in parallel, and other test binaries may install too.
    let lock = File::create(tools.join(".boto3.lock")).expect("create the install lock");
    lock.lock().expect("take the install lock");
    if !marker.is_file() {
        eprintln!(
            "boto3 not found: installing boto3 {BOTO3_VERSION} into {} from PyPI",
            venv.display()
        );
        let run = |command: &mut Command| {
            let status = command.status().expect("run the installer");
            assert!(status.success(), "{command:?} failed: {status}");
        };
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("boto3=={BOTO3_VERSION}")));
        File::create(&marker).expect("mark the install done");
    }
    python
}

const SCRIPT: &str = r#"
import json, os, time
import boto3
from boto3.dynamodb.conditions import Attr, Key

ddb = boto3.resource(
    "dynamodb",
    endpoint_url=os.environ["EMULATOR_ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
table = ddb.create_table(
    TableName="py-check",
    KeySchema=[
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    AttributeDefinitions=[
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    BillingMode="PAY_PER_REQUEST",
)
while ddb.meta.client.describe_table(TableName="py-check")["Table"]["TableStatus"] != "ACTIVE":
    time.sleep(0.01)
for sk in ["a", "b", "c", "d"]:
    table.put_item(Item={"pk": "TX", "sk": sk, "n": len(sk)})
page = table.query(
    KeyConditionExpression=Key("pk").eq("TX") & Key("sk").gt("a"),
    FilterExpression=Attr("sk").ne("c"),
)
print(json.dumps([item["sk"] for item in page["Items"]]))
"#;

#[tokio::test]
async fn boto3_key_conditions_query_the_emulator() {
    let (emulator, _dir) = support::start().await;
    let endpoint = emulator.endpoint();
    let output = tokio::task::spawn_blocking(move || {
        let python = python_with_boto3();
        Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .env("EMULATOR_ENDPOINT", endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "boto3 failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"["b", "d"]"#
    );
}
