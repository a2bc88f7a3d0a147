//! Builders for planner fixtures: a stack ([`StackBuilder`], Represent in miniature with every
//! resource kind) and what a stage holds ([`ActualStage`], deployed as some desired state, then
//! changed by name). Tests say what differs, never where it sits in a vector.

use std::collections::BTreeMap;

use deployer::log_group::log_group_name;
use deployer::rest_api::{
    ActualIntegration, ActualMethod, ActualResource, ActualValidator, integration_uri,
    routes_digest,
};
use deployer::table::ActualTable;
use deployer::{
    Actual, ActualFunction, ActualLogGroup, ActualPartition, ActualRestApi, ActualRole, App,
    Desired, Function, RestApi, Seed, Stage, Table, desired_with_seeds, package_bootstrap,
};

use super::support::{ACCOUNT, ROLE_ARN, deployed_as, table_arn};

/// The id every deployed API has in these fixtures.
pub const API_ID: &str = "a1b2c3";

/// A stack declared piece by piece: functions, the tenant table, one REST API's routes, the
/// seed, and the code revision of each binary. Starts as [`StackBuilder::represent`].
#[derive(Debug, Clone)]
pub struct StackBuilder {
    functions: Vec<Function>,
    routes: Vec<(String, String, String)>,
    seed: Seed,
    /// Binary -> revision mixed into its fake executable; absent means `v1`.
    revisions: BTreeMap<String, String>,
}

impl StackBuilder {
    /// Represent in miniature: a per-tenant `representatives` reading the `data` table, a
    /// shared `counties`, an API routing to both, two seeded tenants, log groups kept 14 days.
    pub fn represent() -> Self {
        StackBuilder {
            functions: vec![
                Function::new("representatives")
                    .per_tenant()
                    .memory(256)
                    .timeout(10)
                    .reads_table("data", "TABLE_NAME"),
                Function::new("counties"),
            ],
            routes: Vec::new(),
            seed: Seed::new("data"),
            revisions: BTreeMap::new(),
        }
        .route("GET", "/representatives", "representatives")
        .route("GET", "/counties", "counties")
        .route("GET", "/counties/{fips}", "counties")
        .record("TX", "STATE", r#"{"name":"Texas"}"#)
        .record("TX", "COUNTY#48201", r#"{"name":"Harris"}"#)
        .record("CA", "STATE", r#"{"name":"California"}"#)
    }

    /// Declares `function`, in place of the one with the same logical name if there is one.
    pub fn function(mut self, function: Function) -> Self {
        match self
            .functions
            .iter_mut()
            .find(|f| f.logical == function.logical)
        {
            Some(existing) => *existing = function,
            None => self.functions.push(function),
        }
        self
    }

    /// Leaves a function out of the stack, and the routes to it.
    pub fn without_function(mut self, logical: &str) -> Self {
        self.functions.retain(|f| f.logical != logical);
        self.routes.retain(|(_, _, function)| function != logical);
        self
    }

    pub fn route(mut self, method: &str, path: &str, function: &str) -> Self {
        self.routes
            .push((method.to_string(), path.to_string(), function.to_string()));
        self
    }

    pub fn without_route(mut self, method: &str, path: &str) -> Self {
        self.routes.retain(|(m, p, _)| !(m == method && p == path));
        self
    }

    pub fn record(mut self, tenant: &str, record: &str, data: &str) -> Self {
        self.seed = self.seed.record(tenant, record, data);
        self
    }

    pub fn without_record(mut self, tenant: &str, record: &str) -> Self {
        if let Some(records) = self.seed.partitions.get_mut(tenant) {
            records.remove(record);
        }
        self
    }

    /// New code for one binary: its package differs from every other revision's.
    pub fn code(mut self, bin: &str, revision: &str) -> Self {
        self.revisions.insert(bin.to_string(), revision.to_string());
        self
    }

    pub fn app(&self) -> App {
        let api = self
            .routes
            .iter()
            .fold(RestApi::new("api"), |api, (method, path, function)| {
                api.route(method, path, function)
            });
        let app = App::new("represent")
            .table(Table::new("data"))
            .rest_api(api)
            .stage(Stage::aws("dev").region("us-east-1"));
        self.functions
            .iter()
            .cloned()
            .fold(app, |app, f| app.function(f))
    }

    pub fn desired(&self) -> Desired {
        let app = self.app();
        let packages = app
            .functions
            .iter()
            .map(|f| {
                let revision = self.revisions.get(&f.bin).map_or("v1", String::as_str);
                let binary = format!("ELF {} {revision}", f.bin);
                (f.bin.clone(), package_bootstrap(binary.as_bytes()))
            })
            .collect();
        desired_with_seeds(&app, "dev", &packages, vec![self.seed.clone()])
            .expect("the fixture stack is valid")
    }
}

/// What a stage holds, built from a desired state and then changed resource by resource.
#[derive(Debug, Clone, Default)]
pub struct ActualStage(Actual);

impl ActualStage {
    /// A stage where nothing is deployed.
    pub fn empty() -> Self {
        ActualStage::default()
    }

    /// The stage exactly as `d` wants it: role, functions, their log groups, tables, every
    /// seeded partition, and the APIs deployed with every function permitted.
    pub fn deployed(d: &Desired) -> Self {
        let functions: Vec<ActualFunction> = d
            .functions
            .iter()
            .map(|f| deployed_as(d, &f.logical, &f.name))
            .collect();
        let log_groups = match d.log_retention_days {
            Some(days) => functions
                .iter()
                .map(|f| ActualLogGroup {
                    name: log_group_name(&f.name),
                    function: f.name.clone(),
                    retention_days: Some(days),
                    arn: format!(
                        "arn:aws:logs:us-east-1:123456789012:log-group:{}",
                        log_group_name(&f.name)
                    ),
                    tags: f.tags.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        let slots: BTreeMap<String, String> = d
            .functions
            .iter()
            .map(|f| (f.logical.clone(), f.name.clone()))
            .collect();
        ActualStage(Actual {
            role: Some(ActualRole {
                name: d.role.name.clone(),
                arn: ROLE_ARN.to_string(),
                managed_policies: d.role.managed_policies.clone(),
                inline_policies: d.role.inline_policies.clone(),
                tags: d.role.tags.clone(),
            }),
            functions,
            tables: d
                .tables
                .iter()
                .map(|t| ActualTable {
                    name: t.name.clone(),
                    arn: table_arn(&t.name),
                    logical: Some(t.logical.clone()),
                    key_schema: Some(t.key_schema.clone()),
                    billing_mode: Some(t.billing_mode.clone()),
                    status: Some("ACTIVE".to_string()),
                    tags: t.tags.clone(),
                })
                .collect(),
            partitions: d
                .seeds
                .iter()
                .flat_map(|s| {
                    s.partitions
                        .iter()
                        .map(|(tenant, records)| ActualPartition {
                            table: s.name.clone(),
                            tenant: tenant.clone(),
                            records: records
                                .iter()
                                .map(|(k, v)| (k.clone(), Some(v.clone())))
                                .collect(),
                        })
                })
                .collect(),
            log_groups,
            rest_apis: d
                .rest_apis
                .iter()
                .map(|api| deployed_api(d, api, &slots))
                .collect(),
            tenant_roles: Vec::new(),
            signing_keys: d
                .signing_keys
                .iter()
                .map(|k| deployer::signing_key::ActualSigningKey::live(&k.name))
                .collect(),
            trail: None,
            api_statements: Vec::new(),
        })
    }

    /// Changes the deployed function of logical name `logical`.
    pub fn function(mut self, logical: &str, change: impl FnOnce(&mut ActualFunction)) -> Self {
        let f = self
            .0
            .functions
            .iter_mut()
            .find(|f| f.logical.as_deref() == Some(logical))
            .unwrap_or_else(|| panic!("no deployed function `{logical}`"));
        change(f);
        self
    }

    /// Changes the deployed table of logical name `logical`.
    pub fn table(mut self, logical: &str, change: impl FnOnce(&mut ActualTable)) -> Self {
        let t = self
            .0
            .tables
            .iter_mut()
            .find(|t| t.logical.as_deref() == Some(logical))
            .unwrap_or_else(|| panic!("no deployed table `{logical}`"));
        change(t);
        self
    }

    /// Changes one record of a tenant's partition: `None` removes it.
    pub fn record(mut self, tenant: &str, record: &str, data: Option<&str>) -> Self {
        let p = self
            .0
            .partitions
            .iter_mut()
            .find(|p| p.tenant == tenant)
            .unwrap_or_else(|| panic!("no partition of tenant `{tenant}`"));
        match data {
            Some(data) => {
                p.records.insert(record.to_string(), Some(data.to_string()));
            }
            None => {
                p.records.remove(record);
            }
        }
        self
    }

    pub fn build(self) -> Actual {
        self.0
    }
}

fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}")
}

/// One API as `api` wants it, deployed with its functions in the slots `slots` names.
fn deployed_api(
    d: &Desired,
    api: &deployer::DesiredRestApi,
    slots: &BTreeMap<String, String>,
) -> ActualRestApi {
    let mut resources: BTreeMap<String, ActualResource> = BTreeMap::new();
    let resource = |path: &str| ActualResource {
        id: match path {
            "/" => "root".to_string(),
            _ => format!("res{}", path.replace('/', "-")),
        },
        path: path.to_string(),
        methods: BTreeMap::new(),
    };
    resources.insert("/".to_string(), resource("/"));
    for route in &api.routes {
        let mut prefix = String::new();
        for part in route.path.split('/').filter(|p| !p.is_empty()) {
            prefix = format!("{prefix}/{part}");
            resources
                .entry(prefix.clone())
                .or_insert_with(|| resource(&prefix));
        }
        let function = slots.get(&route.function).expect("routed function exists");
        if let Some(r) = resources.get_mut(&route.path) {
            r.methods.insert(
                route.method.clone(),
                ActualMethod {
                    request_parameters: route.method_parameters.clone(),
                    authorization_type: "NONE".to_string(),
                    authorizer_id: None,
                    integration: Some(ActualIntegration {
                        kind: "AWS_PROXY".to_string(),
                        http_method: "POST".to_string(),
                        uri: integration_uri(&function_arn(function)),
                        request_parameters: route.integration_parameters.clone(),
                    }),
                    request_validator_id: route.validated.then(|| VALIDATOR_ID.to_string()),
                },
            );
        }
    }
    ActualRestApi {
        id: API_ID.to_string(),
        name: api.name.clone(),
        logical: Some(api.logical.clone()),
        tags: api.tags.clone(),
        resources: resources.into_values().collect(),
        stage_deployed: true,
        deployed_routes: Some(routes_digest(api, slots)),
        permitted: d.functions.iter().map(|f| f.name.clone()).collect(),
        authorizers: Vec::new(),
        authorizer_permitted: Default::default(),
        validators: api
            .validator
            .iter()
            .map(|name| ActualValidator {
                id: VALIDATOR_ID.to_string(),
                name: name.clone(),
                validate_parameters: true,
            })
            .collect(),
    }
}

/// The id the deployed API's request validator has.
const VALIDATOR_ID: &str = "val1";
