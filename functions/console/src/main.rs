//! The console function (`ConsoleFunction` in infra/template.yaml, behind
//! the Cognito JWT authorizer on `ANY /console` and `ANY /console/{proxy+}`).
//!
//! What exists and is tested: the request adapter
//! (`kairos::console::lambda::handle`: the verified claims become the
//! signed-in identity, roles enforced, paths kept below `/console`) over
//! the console's router (`kairos::console::signed_in_router`).
//!
//! What is missing (issue 23 item 2): the console's state over the real
//! adapters. `kairos::console::Console` holds the in-memory contacts, queue
//! and rules versions of `kairos console`; serving it here would show and
//! change a copy, not the deployment. Until the console reads contacts and
//! the audit trail from DynamoDB, publishes through `kairos::publish` (S3,
//! conditional on the version read) and backtests on the archive, this
//! function refuses to start, saying so, rather than serve a copy.

const MISSING: &str = "the console function cannot serve yet: the console's state over DynamoDB (contacts, \
    audit trail) and S3 (rules versions) is not built (issue 23 item 2; README, \"Console\"); \
    use `kairos console` locally and `kairos rules publish` against the stack";

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::tracing::error!("{MISSING}");
    Err(MISSING.into())
}
