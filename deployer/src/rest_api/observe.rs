//! Reading a stage's REST APIs: each API with its resources, methods, integrations and
//! authorizers, whether its stage was deployed, and which functions let it invoke them.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};

use super::{
    ActualAuthorizer, ActualIntegration, ActualMethod, ActualResource, ActualRestApi,
    ActualStatement, ActualValidator, ROUTES_VARIABLE, arn_field, authorizer_source_arn,
    policy_permits, policy_statement_ids, source_arn, statement_api,
};
use crate::clients::Clients;
use crate::error::DeployError;
use crate::function::ActualFunction;
use crate::names::{self, TAG_APP, TAG_LOGICAL, TAG_STAGE};
use crate::step::call_error;

/// Every REST API of the stage: listed by name prefix, kept by tags (as functions are), with
/// resources, methods and integrations, whether the stage was ever deployed, and which of the
/// stage's functions let the API invoke them; and every deployer statement on the stage's
/// functions, whichever API it names.
pub(crate) async fn observe(
    clients: &Clients,
    app: &str,
    stage: &str,
    functions: &[ActualFunction],
) -> Result<(Vec<ActualRestApi>, Vec<ActualStatement>), DeployError> {
    let prefix = names::function_prefix(app, stage);
    let region = clients.region();
    let listed = clients
        .apigateway
        .get_rest_apis()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("GetRestApis", &format!("rest apis {prefix}*"), e))?;
    let mut candidates = Vec::new();
    for api in &listed {
        if let (Some(id), Some(name)) = (api.id(), api.name())
            && name.starts_with(&prefix)
        {
            let tags: BTreeMap<String, String> = api
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            candidates.push((id.to_string(), name.to_string(), tags));
        }
    }

    let mut apis = Vec::new();
    for (id, name, mut tags) in candidates {
        let resource = format!("rest api {name} ({id})");
        // GetRestApis may leave tags out; GetTags is the authority.
        if tags.is_empty() {
            let out = clients
                .apigateway
                .get_tags()
                .resource_arn(format!("arn:aws:apigateway:{region}::/restapis/{id}"))
                .send()
                .await
                .map_err(|e| call_error("GetTags", &resource, e))?;
            tags = out
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
        }
        if tags.get(TAG_APP).map(String::as_str) != Some(app)
            || tags.get(TAG_STAGE).map(String::as_str) != Some(stage)
        {
            continue;
        }
        let resources = read_resources(clients, &id, &resource).await?;
        let authorizers = read_authorizers(clients, &id, &resource).await?;
        let validators = read_validators(clients, &id, &resource).await?;
        let (stage_deployed, deployed_routes) = match clients
            .apigateway
            .get_stage()
            .rest_api_id(&id)
            .stage_name(stage)
            .send()
            .await
        {
            Ok(out) => (
                true,
                out.variables()
                    .and_then(|v| v.get(ROUTES_VARIABLE))
                    .cloned(),
            ),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                (false, None)
            }
            Err(e) => return Err(call_error("GetStage", &resource, e)),
        };
        apis.push(ActualRestApi {
            id,
            name,
            logical: tags.get(TAG_LOGICAL).cloned(),
            tags,
            resources,
            stage_deployed,
            deployed_routes,
            permitted: Default::default(),
            authorizers,
            authorizer_permitted: Default::default(),
            validators,
        });
    }
    // Each function's policy is read once, however many APIs there are, and even when there
    // is none: a statement naming an API that is gone is the stage's to remove.
    // The reads are made before they are streamed, so the future holds no closure over a
    // borrowed function (which would keep it from being `Send`).
    let reads: Vec<_> = functions
        .iter()
        .map(|f| read_policy(clients, &f.name))
        .collect();
    let policies: Vec<Option<String>> = futures::stream::iter(reads)
        .buffered(crate::observe::READ_PARALLELISM)
        .try_collect()
        .await?;
    let mut statements = Vec::new();
    for (f, policy) in functions.iter().zip(policies) {
        let Some(policy) = policy else {
            continue;
        };
        for sid in policy_statement_ids(&policy) {
            if let Some(api) = statement_api(&sid) {
                statements.push(ActualStatement {
                    function: f.name.clone(),
                    api_id: api.to_string(),
                    statement_id: sid.clone(),
                });
            }
        }
        let (region, account) = (arn_field(&f.arn, 3), arn_field(&f.arn, 4));
        for api in &mut apis {
            if policy_permits(&policy, &source_arn(region, account, &api.id)) {
                api.permitted.insert(f.name.clone());
            }
            if policy_permits(&policy, &authorizer_source_arn(region, account, &api.id)) {
                api.authorizer_permitted.insert(f.name.clone());
            }
        }
    }
    statements.sort();
    apis.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok((apis, statements))
}

/// A function's resource policy (GetPolicy), or `None` when it has none: nothing may invoke it.
async fn read_policy(clients: &Clients, function: &str) -> Result<Option<String>, DeployError> {
    match clients
        .lambda
        .get_policy()
        .function_name(function)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out.policy().unwrap_or_default().to_string())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error("GetPolicy", &format!("function {function}"), e)),
    }
}

/// Every authorizer of an API, so the plan can tell whether the tenant authorizer is deployed
/// as wanted.
async fn read_authorizers(
    clients: &Clients,
    api_id: &str,
    resource: &str,
) -> Result<Vec<ActualAuthorizer>, DeployError> {
    let mut authorizers = Vec::new();
    let mut position: Option<String> = None;
    loop {
        let page = clients
            .apigateway
            .get_authorizers()
            .rest_api_id(api_id)
            .limit(500)
            .set_position(position.clone())
            .send()
            .await
            .map_err(|e| call_error("GetAuthorizers", resource, e))?;
        for x in page.items() {
            let Some(id) = x.id() else {
                continue;
            };
            authorizers.push(ActualAuthorizer {
                id: id.to_string(),
                name: x.name().unwrap_or_default().to_string(),
                kind: x
                    .r#type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                authorizer_uri: x.authorizer_uri().unwrap_or_default().to_string(),
                identity_source: x.identity_source().unwrap_or_default().to_string(),
            });
        }
        match page.position() {
            Some(p) if !p.is_empty() && position.as_deref() != Some(p) => {
                position = Some(p.to_string());
            }
            _ => break,
        }
    }
    authorizers.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(authorizers)
}

/// Every request validator of an API, so the plan can tell whether the tenant parameters'
/// validator is deployed and which methods use it.
async fn read_validators(
    clients: &Clients,
    api_id: &str,
    resource: &str,
) -> Result<Vec<ActualValidator>, DeployError> {
    let mut validators = Vec::new();
    let mut position: Option<String> = None;
    loop {
        let page = clients
            .apigateway
            .get_request_validators()
            .rest_api_id(api_id)
            .limit(500)
            .set_position(position.clone())
            .send()
            .await
            .map_err(|e| call_error("GetRequestValidators", resource, e))?;
        for v in page.items() {
            let Some(id) = v.id() else {
                continue;
            };
            validators.push(ActualValidator {
                id: id.to_string(),
                name: v.name().unwrap_or_default().to_string(),
                validate_parameters: v.validate_request_parameters(),
            });
        }
        match page.position() {
            Some(p) if !p.is_empty() && position.as_deref() != Some(p) => {
                position = Some(p.to_string());
            }
            _ => break,
        }
    }
    validators.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(validators)
}

/// Every resource of an API with its methods and their integrations, embedded in GetResources
/// so one paginated call reads the whole API.
async fn read_resources(
    clients: &Clients,
    api_id: &str,
    resource: &str,
) -> Result<Vec<ActualResource>, DeployError> {
    let listed = clients
        .apigateway
        .get_resources()
        .rest_api_id(api_id)
        .embed("methods")
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("GetResources", resource, e))?;
    let mut resources = Vec::new();
    for r in &listed {
        let (Some(id), Some(path)) = (r.id(), r.path()) else {
            continue;
        };
        let methods = r
            .resource_methods()
            .map(|m| {
                m.iter()
                    .map(|(verb, method)| {
                        let integration = method.method_integration().map(|i| ActualIntegration {
                            kind: i
                                .r#type()
                                .map(|t| t.as_str().to_string())
                                .unwrap_or_default(),
                            http_method: i.http_method().unwrap_or_default().to_string(),
                            uri: i.uri().unwrap_or_default().to_string(),
                            request_parameters: i
                                .request_parameters()
                                .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                                .unwrap_or_default(),
                        });
                        let method = ActualMethod {
                            authorization_type: method
                                .authorization_type()
                                .unwrap_or_default()
                                .to_string(),
                            authorizer_id: method.authorizer_id().map(str::to_string),
                            request_parameters: method
                                .request_parameters()
                                .map(|p| p.iter().map(|(k, v)| (k.clone(), *v)).collect())
                                .unwrap_or_default(),
                            integration,
                            request_validator_id: method.request_validator_id().map(str::to_string),
                        };
                        (verb.clone(), method)
                    })
                    .collect()
            })
            .unwrap_or_default();
        resources.push(ActualResource {
            id: id.to_string(),
            path: path.to_string(),
            methods,
        });
    }
    resources.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(resources)
}
