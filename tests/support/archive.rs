//! The event archive on moto: the template's archive bucket (created by
//! [`Stack::start`]) fed by a Firehose delivery stream created here, which
//! moto writes as Firehose's default layout (`events/YYYY/MM/DD/HH/…`,
//! records concatenated); the reader over it.

use super::Stack;
use kairos::archive::{Source, Window};
use kairos_event::Event;
use kairos_store::{Backoff, FirehoseArchive};
use std::time::Duration;

/// The archive's key prefix, as the template's stream writes under it.
pub const PREFIX: &str = "events/";

/// A back-off short enough for tests.
pub const FAST: Backoff = Backoff {
    first: Duration::from_millis(10),
    max: Duration::from_millis(40),
};

/// The archive bucket's name on moto.
pub fn bucket(stack: &Stack) -> &str {
    &stack.infra.buckets["ArchiveBucket"]
}

/// Creates the delivery stream `name` writing to the archive bucket under [`PREFIX`].
pub async fn create_stream(stack: &Stack, name: &str) {
    use aws_sdk_firehose::types::ExtendedS3DestinationConfiguration;
    let destination = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(format!("arn:aws:s3:::{}", bucket(stack)))
        .role_arn("arn:aws:iam::123456789012:role/archive-delivery")
        .prefix(PREFIX)
        .compression_format(aws_sdk_firehose::types::CompressionFormat::Gzip)
        .build()
        .expect("destination");
    aws_sdk_firehose::Client::new(&stack.aws)
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .expect("delivery stream created");
}

/// The Firehose adapter over the stream `name` (which may not exist yet).
pub fn firehose(stack: &Stack, name: &str) -> FirehoseArchive {
    FirehoseArchive::new(aws_sdk_firehose::Client::new(&stack.aws), name).with_backoff(FAST)
}

/// The archive as `kairos replay --archive s3://<bucket>/events/` reads it.
pub fn source(stack: &Stack) -> Source {
    let uri = format!("s3://{}/{PREFIX}", bucket(stack));
    Source::parse(&uri, || kairos::local::s3_client(&stack.aws)).expect("archive uri")
}

/// Every event in the archive, in the reader's order.
pub async fn archived(stack: &Stack) -> Vec<Event> {
    let mut all = Vec::new();
    let read = kairos::archive::play(&source(stack), Window::default(), |day| all.extend(day)).await;
    assert!(read.expect("archive read").rejected.is_empty());
    all
}
