//! The AWS SDK configuration every Represent function loads once at init.

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The standard configuration (environment, `AWS_ENDPOINT_URL` which the emulator sets, the
/// execution role's credentials) with [`https_client`] as its HTTP client.
pub async fn load() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// hyper 1 with rustls on ring and the platform's trusted certificates. The SDK's own default
/// client is rustls on aws-lc-rs, whose C library is most of a release build of a function; this
/// one speaks the same TLS to AWS's endpoints, and plain HTTP to the emulator.
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, Connector, proxy::ProxyConfig};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = Connector::builder().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}
