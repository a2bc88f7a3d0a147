//! The planner, data-driven: (desired, actual) -> the plan a user reads.

use deployer::{Actual, Architecture, Desired, LogFormat, Role, Seed, Tenancy, plan, plan_destroy};

use super::support::{
    self, BASIC, DATA, deployed, deployed_as, desired, records, stage_up_to_date, tenant_desired,
    up_to_date,
};

#[track_caller]
fn check(desired: &Desired, actual: &Actual, expected: &str) {
    let rendered = plan(desired, actual).to_string();
    assert_eq!(
        rendered.trim_end(),
        expected.trim_end(),
        "\n--- rendered ---\n{rendered}\n--- expected ---\n{expected}"
    );
}

fn short(sha: &str) -> String {
    format!("{}…", &sha[..8])
}

#[test]
fn empty_stage_creates_everything() {
    let d = desired();
    let (reps, counties) = (
        short(&d.functions[0].code_sha256),
        short(&d.functions[1].code_sha256),
    );
    check(
        &d,
        &Actual::default(),
        &format!(
            "  + create  role represent-dev-exec  (not deployed yet)
        attach policy {BASIC}
  + create  function represent-dev-representatives  (not deployed yet)
        memory 256 MB
        timeout 10 s
        architecture arm64
        tenancy PerTenant
        code {reps}
  + create  function represent-dev-counties  (not deployed yet)
        memory 128 MB
        timeout 3 s
        architecture arm64
        tenancy Shared
        code {counties}

Plan: 3 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged."
        ),
    );
}

#[test]
fn unchanged_stage_is_all_no_op() {
    let d = desired();
    check(
        &d,
        &up_to_date(&d),
        "    no-op   role represent-dev-exec  (up to date)
    no-op   function represent-dev-representatives  (up to date)
    no-op   function represent-dev-counties  (up to date)

No changes. The stage is up to date.",
    );
    assert!(!plan(&d, &up_to_date(&d)).has_changes());
}

#[test]
fn new_code_is_an_update_of_code_only() {
    let old = desired();
    let new = support::desired_of(&support::app(), "v2");
    let mut actual = up_to_date(&new);
    actual.functions[0] = deployed(&old, "representatives");
    let (from, to) = (
        short(&old.functions[0].code_sha256),
        short(&new.functions[0].code_sha256),
    );
    check(
        &new,
        &actual,
        &format!(
            "    no-op   role represent-dev-exec  (up to date)
  ~ update  function represent-dev-representatives  (code changed ({from} -> {to}))
        code {from} -> {to}
    no-op   function represent-dev-counties  (up to date)

Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 2 unchanged."
        ),
    );
    let p = plan(&new, &actual);
    assert_eq!(p.changes[1].action, deployer::Action::Update);
    assert!(
        matches!(&p.changes[1].op, deployer::Op::Function(op) if op.code && !op.configuration),
        "only the code is uploaded: {p}"
    );
}

#[test]
fn architecture_change_goes_with_the_code() {
    let d = desired();
    let mut actual = up_to_date(&d);
    actual.functions[1].architecture = Architecture::X86_64;
    check(
        &d,
        &actual,
        "    no-op   role represent-dev-exec  (up to date)
    no-op   function represent-dev-representatives  (up to date)
  ~ update  function represent-dev-counties  (architecture changed)
        architecture x86_64 -> arm64

Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 2 unchanged.",
    );
}

#[test]
fn configuration_change_lists_every_difference() {
    let d = desired();
    let mut actual = up_to_date(&d);
    let counties = &mut actual.functions[1];
    counties.memory_mb = 512;
    counties.log_format = LogFormat::Text;
    counties.description = "old".to_string();
    counties
        .environment
        .insert("OLD".to_string(), "1".to_string());
    counties.role_arn = "arn:aws:iam::123456789012:role/handmade".to_string();
    let reps = &mut actual.functions[0];
    reps.environment
        .insert("TABLE".to_string(), "other".to_string());
    check(
        &d,
        &actual,
        r#"    no-op   role represent-dev-exec  (up to date)
  ~ update  function represent-dev-representatives  (configuration changed)
        environment TABLE changed
  ~ update  function represent-dev-counties  (configuration changed)
        memory 512 -> 128
        role handmade -> represent-dev-exec
        log format Text -> JSON
        description "old" -> ""
        environment OLD removed

Plan: 0 to create, 2 to update, 0 to replace, 0 to delete, 1 unchanged."#,
    );
}

#[test]
fn code_and_configuration_change_together() {
    let old = desired();
    let new = support::desired_of(&support::app(), "v2");
    let mut actual = up_to_date(&new);
    actual.functions[1] = deployed(&old, "counties");
    actual.functions[1].timeout_s = 30;
    let (from, to) = (
        short(&old.functions[1].code_sha256),
        short(&new.functions[1].code_sha256),
    );
    check(
        &new,
        &actual,
        &format!(
            "    no-op   role represent-dev-exec  (up to date)
    no-op   function represent-dev-representatives  (up to date)
  ~ update  function represent-dev-counties  (code changed ({from} -> {to}); configuration changed)
        code {from} -> {to}
        timeout 30 -> 3

Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 2 unchanged."
        ),
    );
}

#[test]
fn tenancy_change_replaces_into_the_other_slot() {
    let d = desired();
    let mut actual = up_to_date(&d);
    actual.functions[0].tenancy = Tenancy::Shared;
    check(
        &d,
        &actual,
        "    no-op   role represent-dev-exec  (up to date)
-/+ replace function represent-dev-representatives-r  (tenancy Shared -> PerTenant (immutable after creation))
        replaces represent-dev-representatives
    no-op   function represent-dev-counties  (up to date)

Plan: 0 to create, 0 to update, 1 to replace, 0 to delete, 2 unchanged.",
    );

    // The next replacement moves back to the usual name.
    let mut actual = up_to_date(&d);
    actual.functions[1] = deployed_as(&d, "counties", "represent-dev-counties-r");
    actual.functions[1].tenancy = Tenancy::PerTenant;
    let p = plan(&d, &actual);
    let c = &p.changes[2];
    assert_eq!(c.action, deployer::Action::Replace);
    assert_eq!(c.name, "represent-dev-counties");
    assert!(
        matches!(&c.op, deployer::Op::Function(op) if op.replaces.as_deref() == Some("represent-dev-counties-r")),
        "{p}"
    );
}

#[test]
fn functions_no_longer_in_the_stack_are_deleted() {
    let d = desired();
    let mut actual = up_to_date(&d);
    let mut old = deployed(&d, "counties");
    old.name = "represent-dev-old".to_string();
    old.logical = Some("old".to_string());
    let mut untagged = deployed(&d, "counties");
    untagged.name = "represent-dev-mystery".to_string();
    untagged.logical = None;
    actual.functions.push(untagged);
    actual.functions.push(old);
    check(
        &d,
        &actual,
        "    no-op   role represent-dev-exec  (up to date)
    no-op   function represent-dev-representatives  (up to date)
    no-op   function represent-dev-counties  (up to date)
  - delete  function represent-dev-mystery  (no longer in the stack)
  - delete  function represent-dev-old  (no longer in the stack)

Plan: 0 to create, 0 to update, 0 to replace, 2 to delete, 3 unchanged.",
    );
}

#[test]
fn interrupted_replace_keeps_the_compatible_function() {
    let d = desired();
    let mut actual = up_to_date(&d);
    // The replacement was created, but the run stopped before the old function was deleted.
    actual.functions[0].tenancy = Tenancy::Shared;
    actual.functions.push(deployed_as(
        &d,
        "representatives",
        "represent-dev-representatives-r",
    ));
    check(
        &d,
        &actual,
        "    no-op   role represent-dev-exec  (up to date)
    no-op   function represent-dev-representatives-r  (up to date)
    no-op   function represent-dev-counties  (up to date)
  - delete  function represent-dev-representatives  (left over from an interrupted replace; represent-dev-representatives-r is kept)

Plan: 0 to create, 0 to update, 0 to replace, 1 to delete, 3 unchanged.",
    );
}

#[test]
fn role_policy_changes_are_an_update() {
    let app = support::app().role(
        Role::lambda_basic().inline_policy("tables", r#"{"Version":"2012-10-17","Statement":[]}"#),
    );
    let d = support::desired_of(&app, "v1");
    let mut actual = up_to_date(&d);
    let role = actual.role.as_mut().expect("role");
    role.managed_policies
        .push("arn:aws:iam::aws:policy/ReadOnlyAccess".to_string());
    role.inline_policies
        .insert("stale".to_string(), "{}".to_string());
    check(
        &d,
        &actual,
        "  ~ update  role represent-dev-exec  (policies changed)
        detach policy arn:aws:iam::aws:policy/ReadOnlyAccess
        put inline policy tables
        delete inline policy stale
    no-op   function represent-dev-representatives  (up to date)
    no-op   function represent-dev-counties  (up to date)

Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 2 unchanged.",
    );

    // The same document, reformatted by IAM, is not a change.
    let role = actual.role.as_mut().expect("role");
    role.managed_policies.pop();
    role.inline_policies.clear();
    role.inline_policies.insert(
        "tables".to_string(),
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": []\n}".to_string(),
    );
    assert!(!plan(&d, &actual).has_changes(), "{}", plan(&d, &actual));
}

#[test]
fn destroy_deletes_functions_then_the_role() {
    let d = desired();
    let p = plan_destroy(&up_to_date(&d), "represent", "dev");
    assert_eq!(
        p.to_string(),
        format!(
            "  - delete  function represent-dev-counties  (destroying the stage)
  - delete  function represent-dev-representatives  (destroying the stage)
  - delete  role represent-dev-exec  (destroying the stage)
        detach policy {BASIC}

Plan: 0 to create, 0 to update, 0 to replace, 3 to delete, 0 unchanged.\n"
        )
    );
    assert_eq!(
        plan_destroy(&Actual::default(), "represent", "dev").to_string(),
        "No changes. The stage is up to date.\n"
    );
}

#[test]
fn plan_serializes_with_snake_case_actions() {
    let d = desired();
    let json = serde_json::to_value(plan(&d, &Actual::default())).expect("serializable");
    assert_eq!(json["changes"][1]["action"], "create");
    assert_eq!(json["changes"][1]["kind"], "function");
    assert_eq!(json["changes"][1]["name"], "represent-dev-representatives");
    let s = plan(&d, &Actual::default()).summary();
    assert_eq!(
        (s.create, s.update, s.replace, s.delete, s.unchanged),
        (3, 0, 0, 0, 0)
    );
}

/// Represent with its table, TX seeded with three counties and CA with one.
fn seeded() -> Desired {
    let seed =
        records(Seed::new("data"), "TX", 3).record("CA", "STATE", r#"{"name":"California"}"#);
    tenant_desired(vec![seed])
}

#[test]
fn first_deploy_creates_the_table_and_seeds_every_tenant() {
    let d = seeded();
    let rendered = plan(&d, &Actual::default()).to_string();
    let expected = "  + create  table represent-dev-data  (not deployed yet)
  ~ seed    tenant CA in represent-dev-data  (1 to add, 0 to change, 0 to remove)
  ~ seed    tenant TX in represent-dev-data  (3 to add, 0 to change, 0 to remove)
";
    assert!(rendered.contains(expected), "{rendered}");
    assert!(
        rendered.ends_with(
            "Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 2 to seed, 0 unchanged.\n"
        ),
        "{rendered}"
    );
}

#[test]
fn seed_counts_show_what_each_tenant_needs() {
    let d = seeded();
    let mut actual = stage_up_to_date(&d);
    let tx = actual
        .partitions
        .iter_mut()
        .find(|p| p.tenant == "TX")
        .expect("TX observed");
    tx.records.remove("COUNTY#00000");
    tx.records
        .insert("COUNTY#00001".to_string(), Some("{}".to_string()));
    tx.records.insert("COUNTY#00002".to_string(), None);
    tx.records
        .insert("SEAT#07".to_string(), Some("{}".to_string()));
    check(
        &d,
        &actual,
        "    no-op   role represent-dev-exec  (up to date)
    no-op   table represent-dev-data  (up to date)
    no-op   tenant CA in represent-dev-data  (up to date, 1 record)
  ~ seed    tenant TX in represent-dev-data  (1 to add, 2 to change, 1 to remove)
    no-op   function represent-dev-representatives  (up to date)
    no-op   function represent-dev-counties  (up to date)

Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 1 to seed, 5 unchanged.",
    );
    // The plan as JSON names the records, never their data.
    let json = serde_json::to_string(&plan(&d, &actual)).expect("serializable");
    assert!(json.contains(r#""add":["COUNTY#00000"]"#), "{json}");
    assert!(json.contains(r#""remove":["SEAT#07"]"#), "{json}");
    assert!(json.contains(r#""kind":"seed""#), "{json}");
    assert!(!json.contains("county\\\":"), "{json}");
    assert!(!json.contains("California"), "{json}");
}

#[test]
fn partitions_of_tenants_outside_the_seed_are_left_alone() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 1)]);
    let mut actual = stage_up_to_date(&d);
    let mut other = actual.partitions[0].clone();
    other.tenant = "OK".to_string();
    actual.partitions.push(other);
    assert!(!plan(&d, &actual).has_changes(), "{}", plan(&d, &actual));

    // Seeding a tenant with no records empties its partition on purpose.
    let emptied = tenant_desired(vec![records(Seed::new("data"), "TX", 1).empty_tenant("OK")]);
    let p = plan(&emptied, &actual);
    let ok = p
        .changes
        .iter()
        .find(|c| c.resource == "tenant OK in represent-dev-data")
        .expect("OK planned");
    assert_eq!(ok.reason, "0 to add, 0 to change, 1 to remove");
}

#[test]
fn key_schema_change_replaces_the_table_and_reseeds() {
    let d = seeded();
    let mut actual = stage_up_to_date(&d);
    let table = &mut actual.tables[0];
    if let Some(key) = table.key_schema.as_mut() {
        key.partition.name = "pk".to_string();
    }
    let rendered = plan(&d, &actual).to_string();
    assert!(
        rendered.contains(
            "-/+ replace table represent-dev-data  (key schema is immutable: the table is deleted and created again, all its data is lost and seeded tenants are seeded again)
        key schema pk (S), record (S) -> tenant (S), record (S)
  ~ seed    tenant CA in represent-dev-data  (1 to add, 0 to change, 0 to remove)
  ~ seed    tenant TX in represent-dev-data  (3 to add, 0 to change, 0 to remove)"
        ),
        "{rendered}"
    );
}

#[test]
fn provisioned_table_is_switched_to_on_demand() {
    let d = seeded();
    let mut actual = stage_up_to_date(&d);
    actual.tables[0].billing_mode = Some("PROVISIONED".to_string());
    let rendered = plan(&d, &actual).to_string();
    assert!(
        rendered.contains(
            "  ~ update  table represent-dev-data  (billing mode changed)
        billing mode PROVISIONED -> PAY_PER_REQUEST"
        ),
        "{rendered}"
    );
    // A table whose billing mode DescribeTable leaves out is not a change.
    actual.tables[0].billing_mode = None;
    assert!(!plan(&d, &actual).has_changes());
}

#[test]
fn tables_no_longer_in_the_stack_are_deleted_after_functions() {
    let d = seeded();
    let mut actual = stage_up_to_date(&d);
    let mut old = actual.tables[0].clone();
    old.name = "represent-dev-old".to_string();
    old.logical = Some("old".to_string());
    actual.tables.push(old);
    let mut gone = deployed(&d, "counties");
    gone.name = "represent-dev-gone".to_string();
    gone.logical = Some("gone".to_string());
    actual.functions.push(gone);
    let rendered = plan(&d, &actual).to_string();
    assert!(
        rendered.contains(
            "  - delete  function represent-dev-gone  (no longer in the stack)
  - delete  table represent-dev-old  (no longer in the stack)
"
        ),
        "{rendered}"
    );
    let destroy = plan_destroy(&actual, "represent", "dev").to_string();
    assert!(
        destroy.contains(&format!(
            "  - delete  table {DATA}  (destroying the stage)\n  - delete  table represent-dev-old"
        )),
        "{destroy}"
    );
}

#[test]
fn tables_declare_their_key_and_writers_get_write_access_to_their_tables_only() {
    use deployer::{App, Function, Stage, Table};
    let app = App::new("represent")
        .table(Table::new("data"))
        .table(Table::new("cache").key("id", None))
        .function(
            Function::new("writer")
                .reads_table("data", "DATA_TABLE")
                .writes_table("cache", "CACHE_TABLE"),
        )
        .stage(Stage::aws("dev").region("us-east-1").unmanaged_log_groups());
    let d = deployer::desired(&app, "dev", &support::packages(&app, "v1")).expect("valid");
    let doc: serde_json::Value =
        serde_json::from_str(&d.role.inline_policies["table-read"]).expect("JSON policy");
    let statements = doc["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 2, "{doc}");
    assert_eq!(
        statements[0]["Resource"],
        serde_json::json!([
            "arn:aws:dynamodb:*:*:table/represent-dev-cache",
            "arn:aws:dynamodb:*:*:table/represent-dev-data"
        ])
    );
    assert_eq!(statements[1]["Sid"], "WriteTenantTables");
    assert_eq!(
        statements[1]["Resource"],
        serde_json::json!(["arn:aws:dynamodb:*:*:table/represent-dev-cache"])
    );
    let cache = d.find_table("cache").expect("declared");
    assert_eq!(cache.key_schema.to_string(), "id (S)");
    let data = d.find_table("data").expect("declared");
    assert_eq!(data.key_schema.to_string(), "tenant (S), record (S)");
}

#[test]
fn tenant_data_is_only_seeded_into_tables_keyed_by_tenant_and_record() {
    use deployer::{App, Function, Stage, Table};
    let app = App::new("represent")
        .table(Table::new("cache").key("id", None))
        .function(Function::new("writer").writes_table("cache", "CACHE_TABLE"))
        .stage(Stage::aws("dev").region("us-east-1").unmanaged_log_groups());
    let seeds = vec![Seed::new("cache").record("TX", "STATE", "{}")];
    let err = deployer::desired_with_seeds(&app, "dev", &support::packages(&app, "v1"), seeds)
        .expect_err("refused before any call");
    assert!(err.to_string().contains("keyed `id (S)`"), "{err}");
}
