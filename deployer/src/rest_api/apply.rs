//! The API Gateway calls that create, change and delete a stage's REST APIs. One API's
//! changes run as one step: its routes need the ids of the resources and the authorizer this
//! run creates.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_lambda::error::SdkError;

use super::{ApiChange, ApiStep, ApiTarget, DesiredRoute};
use crate::change::{Action, ResourceKind};
use crate::clients::no_retry;
use crate::error::DeployError;
use crate::function::function_arn;
use crate::step::{
    Ctx, Failure, call_error, create_observed, delete_converged, failure_error, sent,
};

/// Creates or updates one REST API: the API, its authorizer, its routes (deletes first), then
/// the permissions of the functions it invokes, then a deployment to the stage if anything about
/// the routes changed. `changes` are every change of that API but its deletion. Pushes the
/// index (in `changes`) of each change carried out onto `done`, and returns the API's id.
pub(crate) async fn apply(
    ctx: &Ctx<'_>,
    changes: &[&ApiChange],
    done: &mut Vec<usize>,
) -> Result<Option<String>, DeployError> {
    let Some((api_index, api)) = changes
        .iter()
        .enumerate()
        .find(|(_, c)| c.kind == ResourceKind::RestApi)
    else {
        return Ok(None);
    };
    let ApiTarget::Api { resources, tags } = &api.op.target else {
        return Ok(None);
    };
    let mut resources = resources.clone();
    let id = match (&api.op.api_id, api.action) {
        (Some(id), Action::NoOp) => id.clone(),
        _ => {
            ctx.say(&format!("creating {}", api.resource));
            let (id, created) = create_rest_api(ctx, &api.name, tags).await?;
            resources = created;
            done.push(api_index);
            id
        }
    };
    let of_kind = |kind: ResourceKind| {
        changes
            .iter()
            .enumerate()
            .filter(move |(_, c)| c.kind == kind && c.action != Action::NoOp)
            .map(|(i, c)| (i, *c, &c.op))
    };
    // The routes need the authorizer's id: the one kept, or the one created now. A
    // replacement creates the new one first, so no method is ever left pointing at nothing.
    let mut authorizer_id = None;
    let mut stale_authorizers = Vec::new();
    for (i, c) in changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == ResourceKind::Authorizer)
    {
        let ApiTarget::Authorizer {
            name,
            function,
            identity_source,
            id: existing,
        } = &c.op.target
        else {
            continue;
        };
        match (c.action, function) {
            (Action::NoOp, _) => authorizer_id = existing.clone(),
            (Action::Delete, _) => stale_authorizers.extend(existing.clone().map(|x| (i, *c, x))),
            (_, Some(function)) => {
                let arn = function_arn(ctx, function).await?;
                ctx.say(&format!("creating {}", c.resource));
                let new = create_authorizer(ctx, &id, name, &arn, identity_source).await?;
                authorizer_id = Some(new);
                stale_authorizers.extend(existing.clone().map(|x| (i, *c, x)));
                if c.action == Action::Create {
                    done.push(i);
                }
            }
            (_, None) => {}
        }
    }
    // The validated routes need the validator's id: the one kept, or the one created now.
    let mut validator_id = None;
    for (i, c) in changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == ResourceKind::RequestValidator)
    {
        let ApiTarget::Validator { name, id: existing } = &c.op.target else {
            continue;
        };
        match (c.action, existing) {
            (Action::NoOp, _) => validator_id = existing.clone(),
            (Action::Update, Some(existing)) => {
                ctx.say(&format!("updating {}", c.resource));
                update_validator(ctx, &id, existing, &c.resource).await?;
                validator_id = Some(existing.clone());
                done.push(i);
            }
            _ => {
                ctx.say(&format!("creating {}", c.resource));
                validator_id = Some(create_validator(ctx, &id, name, &c.resource).await?);
                done.push(i);
            }
        }
    }
    let mut deleted = BTreeSet::new();
    for (i, c, s) in of_kind(ResourceKind::Route) {
        if c.action == Action::Delete {
            ctx.say(&format!("deleting {}", c.resource));
            delete_route(ctx, &id, s, &mut deleted).await?;
            done.push(i);
        }
    }
    for (i, c, s) in of_kind(ResourceKind::Route) {
        if c.action == Action::Delete {
            continue;
        }
        let ApiTarget::Route {
            path,
            function: Some(function),
            put_method,
            route: Some(route),
            ..
        } = &s.target
        else {
            continue;
        };
        let arn = function_arn(ctx, function).await?;
        let verb = if c.action == Action::Create {
            "creating"
        } else {
            "updating"
        };
        ctx.say(&format!("{verb} {}", c.resource));
        let resource_id = ensure_resource(ctx, &id, &mut resources, path).await?;
        let put_method = c.action == Action::Create || *put_method;
        let target = RouteTarget {
            function_arn: &arn,
            authorizer_id: authorizer_id.as_deref(),
            validator_id: validator_id.as_deref(),
        };
        put_route(ctx, &id, &resource_id, route, target, put_method, c.action).await?;
        done.push(i);
    }
    for (i, c, old) in stale_authorizers {
        ctx.say(&format!("deleting authorizer {old} of {}", c.resource));
        delete_authorizer(ctx, &id, &old, &c.resource).await?;
        done.push(i);
    }
    for (i, c, s) in of_kind(ResourceKind::Permission) {
        let (function, authorizer) = match &s.target {
            ApiTarget::Permission { function } => (function, false),
            ApiTarget::AuthorizerPermission { function } => (function, true),
            _ => continue,
        };
        let arn = function_arn(ctx, function).await?;
        ctx.say(&format!("adding {}", c.resource));
        add_permission(ctx, function, &arn, &id, authorizer).await?;
        done.push(i);
    }
    for (i, c, s) in of_kind(ResourceKind::Deployment) {
        let ApiTarget::Deployment { stage, routes } = &s.target else {
            continue;
        };
        ctx.say(&format!("creating {} ({})", c.resource, c.reason));
        create_deployment(ctx, &id, stage, routes, &c.resource).await?;
        done.push(i);
    }
    Ok(Some(id))
}

/// Deletes a REST API the stack no longer declares (or a whole stage's, on destroy).
pub(crate) async fn delete(ctx: &Ctx<'_>, c: &ApiChange) -> Result<(), DeployError> {
    let Some(id) = c.op.api_id.as_deref() else {
        return Ok(());
    };
    ctx.say(&format!("deleting {} ({})", c.resource, c.reason));
    delete_rest_api(ctx, &c.resource, id).await
}

/// Removes a statement naming an API that is gone from a function that stays; a statement (or
/// function) already gone counts as removed.
pub(crate) async fn remove_statement(ctx: &Ctx<'_>, c: &ApiChange) -> Result<(), DeployError> {
    let ApiTarget::Statement {
        function,
        statement_id,
    } = &c.op.target
    else {
        return Ok(());
    };
    ctx.say(&format!("removing {} ({})", c.resource, c.reason));
    let result = sent(
        ctx,
        ctx.clients
            .lambda
            .remove_permission()
            .function_name(function)
            .statement_id(statement_id)
            .send(),
    )
    .await;
    delete_converged(
        "RemovePermission",
        &c.resource,
        result,
        aws_sdk_lambda::operation::remove_permission::RemovePermissionError::is_resource_not_found_exception,
    )
}

/// CreateRestApi (regional, tagged), returning its id and its root resource. API Gateway does
/// not refuse duplicate names, so the create is never blindly sent twice: after an ambiguous
/// failure the API is looked for by name first, and an API with the same name that a previous,
/// interrupted run created is reused.
async fn create_rest_api(
    ctx: &Ctx<'_>,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(String, BTreeMap<String, String>), DeployError> {
    use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType};
    let resource = format!("rest api {name}");
    let send = move || async move {
        ctx.clients
            .apigateway
            .create_rest_api()
            .name(name)
            .description("REST API of one deployer stage")
            .endpoint_configuration(
                EndpointConfiguration::builder()
                    .types(EndpointType::Regional)
                    .build(),
            )
            .set_tags(Some(
                tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ))
            .customize()
            .config_override(no_retry!(aws_sdk_apigateway))
            .send()
            .await
            .map(|out| {
                (
                    out.id().map(str::to_string),
                    out.root_resource_id().map(str::to_string),
                )
            })
    };
    let find =
        move || async move { Ok(find_rest_api(ctx, name).await?.map(|id| (Some(id), None))) };
    let (id, root) = match create_observed(ctx, &resource, send, find).await? {
        Ok(created) => created,
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_conflict_exception()) =>
        {
            ctx.say(&format!("{resource} already exists"));
            (find_rest_api(ctx, name).await?, None)
        }
        Err(f) => return Err(failure_error("CreateRestApi", &resource, f)),
    };
    let id = id.ok_or_else(|| DeployError::MissingField {
        call: "CreateRestApi",
        resource: resource.clone(),
        field: "id",
    })?;
    let resources = match root {
        Some(root) => BTreeMap::from([("/".to_string(), root)]),
        None => read_resource_ids(ctx, &id, &resource).await?,
    };
    Ok((id, resources))
}

/// The id of the API named `name`, if one exists.
async fn find_rest_api(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, DeployError> {
    let mut apis = ctx
        .clients
        .apigateway
        .get_rest_apis()
        .limit(500)
        .into_paginator()
        .items()
        .send();
    while let Some(api) = apis.next().await {
        let api = api.map_err(|e| call_error("GetRestApis", &format!("rest api {name}"), e))?;
        if api.name() == Some(name) {
            return Ok(api.id().map(str::to_string));
        }
    }
    Ok(None)
}

/// Path -> id of every resource of an API, as GetResources reports them now.
async fn read_resource_ids(
    ctx: &Ctx<'_>,
    api_id: &str,
    resource: &str,
) -> Result<BTreeMap<String, String>, DeployError> {
    let items = ctx
        .clients
        .apigateway
        .get_resources()
        .rest_api_id(api_id)
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("GetResources", resource, e))?;
    Ok(items
        .iter()
        .filter_map(|r| Some((r.path()?.to_string(), r.id()?.to_string())))
        .collect())
}

/// The id of the resource for `path`, creating it and any missing parent, one CreateResource
/// per path segment.
async fn ensure_resource(
    ctx: &Ctx<'_>,
    api_id: &str,
    resources: &mut BTreeMap<String, String>,
    path: &str,
) -> Result<String, DeployError> {
    let api = format!("rest api {api_id}");
    let mut parent = resources
        .get("/")
        .cloned()
        .ok_or_else(|| DeployError::MissingField {
            call: "GetResources",
            resource: api.clone(),
            field: "root resource `/`",
        })?;
    let mut current = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current = format!("{current}/{part}");
        if let Some(id) = resources.get(&current) {
            parent = id.clone();
            continue;
        }
        let resource = format!("resource {current} of {api}");
        let result = sent(
            ctx,
            ctx.clients
                .apigateway
                .create_resource()
                .rest_api_id(api_id)
                .parent_id(&parent)
                .path_part(part)
                .send(),
        )
        .await;
        let id = match result {
            Ok(out) => out.id().map(str::to_string),
            // An interrupted run created it: read its id.
            Err(Failure::Fatal(e))
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                *resources = read_resource_ids(ctx, api_id, &api).await?;
                resources.get(&current).cloned()
            }
            Err(f) => return Err(failure_error("CreateResource", &resource, f)),
        };
        let id = id.ok_or(DeployError::MissingField {
            call: "CreateResource",
            resource,
            field: "id",
        })?;
        resources.insert(current.clone(), id.clone());
        parent = id;
    }
    Ok(parent)
}

/// PutMethod (when the method is new or its parameters changed) and PutIntegration, which
/// replaces the integration in place. API Gateway refuses PutMethod on an existing method, so
/// an update deletes it first; the deployed stage keeps serving its snapshot meanwhile.
async fn put_route(
    ctx: &Ctx<'_>,
    api_id: &str,
    resource_id: &str,
    route: &DesiredRoute,
    target: RouteTarget<'_>,
    put_method: bool,
    action: Action,
) -> Result<(), DeployError> {
    use aws_sdk_apigateway::types::IntegrationType;
    let function_arn = target.function_arn;
    let resource = format!("route {} {} of rest api {api_id}", route.method, route.path);
    let (authorization, authorizer_id) = match (route.authorized, target.authorizer_id) {
        (true, Some(id)) => (super::CUSTOM, Some(id.to_string())),
        (true, None) => {
            return Err(DeployError::MissingField {
                call: "CreateAuthorizer",
                resource,
                field: "id of the tenant authorizer",
            });
        }
        (false, _) => ("NONE", None),
    };
    let validator_id = match (route.validated, target.validator_id) {
        (true, Some(id)) => Some(id.to_string()),
        (true, None) => {
            return Err(DeployError::MissingField {
                call: "CreateRequestValidator",
                resource,
                field: "id of the request validator",
            });
        }
        (false, _) => None,
    };
    if put_method && action == Action::Update {
        delete_method(ctx, api_id, resource_id, &route.method, &resource).await?;
    }
    if put_method {
        let result = sent(
            ctx,
            ctx.clients
                .apigateway
                .put_method()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method(&route.method)
                .authorization_type(authorization)
                .set_authorizer_id(authorizer_id.clone())
                .set_request_validator_id(validator_id.clone())
                .set_request_parameters(Some(
                    route
                        .method_parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), *v))
                        .collect(),
                ))
                .send(),
        )
        .await;
        match result {
            Ok(_) => {}
            // An interrupted run put it already; the next observe checks its parameters.
            Err(Failure::Fatal(e))
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) => {}
            Err(f) => return Err(failure_error("PutMethod", &resource, f)),
        }
    }
    sent(
        ctx,
        ctx.clients
            .apigateway
            .put_integration()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method(&route.method)
            .r#type(IntegrationType::AwsProxy)
            .integration_http_method(super::INTEGRATION_METHOD)
            .uri(super::integration_uri(function_arn))
            .set_request_parameters(Some(
                route
                    .integration_parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
            .send(),
    )
    .await
    .map_err(|f| failure_error("PutIntegration", &resource, f))?;
    Ok(())
}

async fn delete_method(
    ctx: &Ctx<'_>,
    api_id: &str,
    resource_id: &str,
    method: &str,
    resource: &str,
) -> Result<(), DeployError> {
    let result = sent(
        ctx,
        ctx.clients
            .apigateway
            .delete_method()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method(method)
            .send(),
    )
    .await;
    delete_converged(
        "DeleteMethod",
        resource,
        result,
        aws_sdk_apigateway::operation::delete_method::DeleteMethodError::is_not_found_exception,
    )
}

/// Removes a route: its method, or the topmost resource no route needs any more (once per
/// apply, with everything under it).
async fn delete_route(
    ctx: &Ctx<'_>,
    api_id: &str,
    step: &ApiStep,
    deleted: &mut BTreeSet<String>,
) -> Result<(), DeployError> {
    let ApiTarget::Route {
        method,
        path,
        resource_id,
        delete_resource,
        ..
    } = &step.target
    else {
        return Ok(());
    };
    let resource = format!("route {method} {path} of rest api {api_id}");
    if let Some(top) = delete_resource {
        if !deleted.insert(top.clone()) {
            return Ok(());
        }
        let result = sent(
            ctx,
            ctx.clients
                .apigateway
                .delete_resource()
                .rest_api_id(api_id)
                .resource_id(top)
                .send(),
        )
        .await;
        return delete_converged(
"DeleteResource",
&resource,
result,
aws_sdk_apigateway::operation::delete_resource::DeleteResourceError::is_not_found_exception,
);
    }
    match resource_id {
        Some(resource_id) => delete_method(ctx, api_id, resource_id, method, &resource).await,
        None => Ok(()),
    }
}

/// Lets API `api_id` invoke the function, on every stage, method and path of that API only;
/// or, for the API's authorizers (`authorizer`), from any authorizer of that API only.
async fn add_permission(
    ctx: &Ctx<'_>,
    function: &str,
    function_arn: &str,
    api_id: &str,
    authorizer: bool,
) -> Result<(), DeployError> {
    let resource = format!("function {function}");
    let (region, account) = (
        super::arn_field(function_arn, 3),
        super::arn_field(function_arn, 4),
    );
    let (source, statement) = if authorizer {
        (
            super::authorizer_source_arn(region, account, api_id),
            super::authorizer_statement_id(api_id),
        )
    } else {
        (
            super::source_arn(region, account, api_id),
            super::statement_id(api_id),
        )
    };
    let exists =
        |e: &SdkError<aws_sdk_lambda::operation::add_permission::AddPermissionError, _>| {
            e.as_service_error().is_some_and(|s| {
                s.is_resource_conflict_exception() && s.to_string().contains("already exists")
            })
        };
    let result = sent(
        ctx,
        ctx.clients
            .lambda
            .add_permission()
            .function_name(function)
            .statement_id(&statement)
            .action("lambda:InvokeFunction")
            .principal(super::APIGATEWAY_PRINCIPAL)
            .source_arn(&source)
            .send(),
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        // The statement names the API, so an existing one is this very permission.
        Err(Failure::Fatal(e)) if exists(&e) => Ok(()),
        Err(f) => Err(failure_error("AddPermission", &resource, f)),
    }
}

/// What a route's method and integration point at, resolved at apply time.
#[derive(Clone, Copy)]
struct RouteTarget<'a> {
    function_arn: &'a str,
    /// The tenant authorizer's id, when the API has one.
    authorizer_id: Option<&'a str>,
    /// The request validator's id, when the API has one.
    validator_id: Option<&'a str>,
}

/// CreateRequestValidator: checks required request parameters (the tenant), not bodies.
async fn create_validator(
    ctx: &Ctx<'_>,
    api_id: &str,
    name: &str,
    resource: &str,
) -> Result<String, DeployError> {
    let out = sent(
        ctx,
        ctx.clients
            .apigateway
            .create_request_validator()
            .rest_api_id(api_id)
            .name(name)
            .validate_request_parameters(true)
            .validate_request_body(false)
            .send(),
    )
    .await
    .map_err(|f| failure_error("CreateRequestValidator", resource, f))?;
    out.id()
        .map(str::to_string)
        .ok_or(DeployError::MissingField {
            call: "CreateRequestValidator",
            resource: resource.to_string(),
            field: "id",
        })
}

/// UpdateRequestValidator: turns parameter validation on for a validator that has it off.
async fn update_validator(
    ctx: &Ctx<'_>,
    api_id: &str,
    validator_id: &str,
    resource: &str,
) -> Result<(), DeployError> {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    sent(
        ctx,
        ctx.clients
            .apigateway
            .update_request_validator()
            .rest_api_id(api_id)
            .request_validator_id(validator_id)
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path("/validateRequestParameters")
                    .value("true")
                    .build(),
            )
            .send(),
    )
    .await
    .map_err(|f| failure_error("UpdateRequestValidator", resource, f))?;
    Ok(())
}

/// CreateAuthorizer: a TOKEN authorizer invoking `function_arn`, returning its id.
async fn create_authorizer(
    ctx: &Ctx<'_>,
    api_id: &str,
    name: &str,
    function_arn: &str,
    identity_source: &str,
) -> Result<String, DeployError> {
    use aws_sdk_apigateway::types::AuthorizerType;
    let resource = format!("authorizer {name} of rest api {api_id}");
    let out = sent(
        ctx,
        ctx.clients
            .apigateway
            .create_authorizer()
            .rest_api_id(api_id)
            .name(name)
            .r#type(AuthorizerType::Token)
            .authorizer_uri(super::integration_uri(function_arn))
            .identity_source(identity_source)
            .send(),
    )
    .await
    .map_err(|f| failure_error("CreateAuthorizer", &resource, f))?;
    out.id()
        .map(str::to_string)
        .ok_or(DeployError::MissingField {
            call: "CreateAuthorizer",
            resource,
            field: "id",
        })
}

async fn delete_authorizer(
    ctx: &Ctx<'_>,
    api_id: &str,
    authorizer_id: &str,
    resource: &str,
) -> Result<(), DeployError> {
    let result = sent(
        ctx,
        ctx.clients
            .apigateway
            .delete_authorizer()
            .rest_api_id(api_id)
            .authorizer_id(authorizer_id)
            .send(),
    )
    .await;
    delete_converged(
"DeleteAuthorizer",
resource,
result,
aws_sdk_apigateway::operation::delete_authorizer::DeleteAuthorizerError::is_not_found_exception,
)
}

/// CreateDeployment of the API to its stage. Each deployment carries a token of its own in its
/// description, so after an ambiguous failure the one this call made is found among the API's
/// deployments instead of a second one being made.
async fn create_deployment(
    ctx: &Ctx<'_>,
    api_id: &str,
    stage: &str,
    routes: &str,
    resource: &str,
) -> Result<(), DeployError> {
    let description = format!("deployed by the deployer ({})", crate::clients::token());
    let description = description.as_str();
    let send = move || async move {
        ctx.clients
            .apigateway
            .create_deployment()
            .rest_api_id(api_id)
            .stage_name(stage)
            .description(description)
            .variables(super::ROUTES_VARIABLE, routes)
            .customize()
            .config_override(no_retry!(aws_sdk_apigateway))
            .send()
            .await
            .map(|_| ())
    };
    let find = move || async move {
        let deployments = ctx
            .clients
            .apigateway
            .get_deployments()
            .rest_api_id(api_id)
            .limit(500)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| call_error("GetDeployments", resource, e))?;
        Ok(deployments
            .iter()
            .any(|d| d.description() == Some(description))
            .then_some(()))
    };
    create_observed(ctx, resource, send, find)
        .await?
        .map_err(|f| failure_error("CreateDeployment", resource, f))
}

async fn delete_rest_api(ctx: &Ctx<'_>, resource: &str, api_id: &str) -> Result<(), DeployError> {
    let result = sent(
        ctx,
        ctx.clients
            .apigateway
            .delete_rest_api()
            .rest_api_id(api_id)
            .send(),
    )
    .await;
    delete_converged(
        "DeleteRestApi",
        resource,
        result,
        aws_sdk_apigateway::operation::delete_rest_api::DeleteRestApiError::is_not_found_exception,
    )
}
