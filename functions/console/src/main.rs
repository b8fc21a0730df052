//! The console function (`ConsoleFunction` in infra/template.yaml, on
//! `ANY /console` and `ANY /console/{proxy+}`, with its own Cognito sign-in:
//! `kairos::console::signin`, the ID token in a session cookie verified on
//! every request):
//! the console's pages over the deployment (`kairos::console::Aws`: the
//! contacts table, audit trail and counters, the write-back queue, the
//! versioned rules object and the event archive), each API Gateway request
//! served by `kairos::console::lambda::handle` with the verified claims as
//! the signed-in identity. Configuration: `kairos::console::AwsConfig` and
//! `kairos::console::signin::SignIn::from_env`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use kairos::console::signin::SignIn;
use kairos::console::{lambda, signed_in_router, AwsConfig, Console};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = AwsConfig::from_env(|name| std::env::var(name).ok())?;
    let aws = kairos_store::sdk::load_from_env().await;
    kairos_store::init_log_hashing(&aws).await?;
    let console = Arc::new(Console::aws(config, &aws, kairos_store::s3_client(&aws)));
    let signin = Arc::new(SignIn::from_env()?);
    let router = signin.wrap(signed_in_router(console));
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        let router = router.clone();
        async move { Ok::<_, Error>(lambda::handle(router, event.payload).await) }
    }))
    .await
}
