//! `cargo xtask token --tenant TX [--expires 1h]`: mints a token for the app's token authorizer,
//! an HS256 JWT signed with the stage's signing key (read from Secrets Manager with the
//! developer's own credentials), whose claims are `tenant`, `sub` and `exp`. For local use and
//! tests: `curl -H "Authorization: Bearer $(cargo xtask token --tenant TX)" .../messages`.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2_hmac::Sha256;

use super::context::{self, StageArgs};
use super::logs::parse_since;
use super::output::{OutputFormat, write_stdout};
use super::{Ctx, Outcome};

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// The tenant the token names
    #[arg(long, visible_alias = "tenant-id")]
    pub tenant: String,
    /// How long the token is good for: 30s, 15m, 1h or 2d
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    pub expires: Duration,
    /// Who the token is for (its `sub` claim)
    #[arg(long, default_value = "developer")]
    pub subject: String,
}

/// An HS256 JWT with the claims `tenant`, `sub` and `exp` (seconds since the epoch).
pub fn mint(key: &[u8], tenant: &str, subject: &str, exp: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({ "tenant": tenant, "sub": subject, "exp": exp });
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

pub async fn run(ctx: &Ctx<'_>, args: TokenArgs) -> Outcome {
    let Some(logical) = ctx.app.token_key.as_deref() else {
        bail!(
            "this app declares no token signing key: its command line needs \
             `.token_signing_key(\"<key>\")` naming the key its authorizer function reads"
        );
    };
    let stage = context::checked_stage(ctx.app, &args.stage)?;
    crate::tenant::validate_tenant_id(&args.tenant)?;
    if !ctx.app.is_tenant(&args.tenant) {
        return Err(ctx.app.unknown_tenant(&args.tenant));
    }
    let target = context::connect(ctx, stage, &args.stage).await?;
    let name = crate::signing_key::secret_name(&ctx.app.stack.name, &stage.name, logical);
    let key = match crate::signing_key::read(&target.clients, &name).await {
        Ok(key) if !key.is_empty() => key,
        _ => bail!(
            "stage `{}` has no signing key `{name}` yet: run `{} deploy --stage {}` first, which creates it",
            stage.name,
            ctx.app.bin_name,
            stage.name
        ),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let exp = now.saturating_add(args.expires.as_secs());
    let token = mint(&key, &args.tenant, &args.subject, exp);
    let text = match args.stage.output {
        OutputFormat::Json => format!(
            "{}\n",
            serde_json::json!({ "token": token, "tenant": args.tenant, "exp": exp })
        ),
        OutputFormat::Text => format!("{token}\n"),
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
