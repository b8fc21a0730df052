//! The rules file in S3: a versioned bucket's object, read conditionally on
//! its ETag so an unchanged file costs one small request and no download.

use aws_sdk_s3::Client;

use crate::{Fetched, RulesObject, StoreError};

/// The object metadata holding a published version's sequence (S3 stores it
/// as `x-amz-meta-kairos-seq`): a number raised by every publish
/// (`kairos rules publish` writes it), which records carry as the version
/// that decided them. An object without it has its `LastModified` in
/// milliseconds.
pub const SEQ_METADATA: &str = "kairos-seq";

/// The rules object `s3://<bucket>/<key>`.
#[derive(Debug, Clone)]
pub struct S3Rules {
    client: Client,
    bucket: String,
    key: String,
}

impl S3Rules {
    /// The object at `uri` (`s3://bucket/key`) through `client`; the error
    /// says what is wrong with the URI.
    pub fn new(client: Client, uri: &str) -> Result<S3Rules, String> {
        let (bucket, key) = parse_uri(uri)?;
        Ok(S3Rules {
            client,
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

/// An S3 client on `aws`: path-style when a local endpoint is set
/// (`AWS_ENDPOINT_URL`: moto and other local servers have no bucket host names).
pub fn client(aws: &aws_config::SdkConfig) -> Client {
    let local = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    Client::from_conf(aws_sdk_s3::config::Builder::from(aws).force_path_style(local).build())
}

/// `s3://bucket/key` into its bucket and key, both non-empty.
pub fn parse_uri(uri: &str) -> Result<(&str, &str), String> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`{uri}`: expected s3://bucket/key"))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket, key)),
        _ => Err(format!("`{uri}`: expected s3://bucket/key")),
    }
}

impl RulesObject for S3Rules {
    async fn fetch(&self, etag: Option<&str>) -> Result<Fetched, StoreError> {
        let get = self.client.get_object().bucket(&self.bucket).key(&self.key);
        let result = get.set_if_none_match(etag.map(str::to_string)).send().await;
        let out = match result {
            Ok(out) => out,
            Err(err) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                if status == Some(304) {
                    return Ok(Fetched::Unchanged);
                }
                return match err.into_service_error() {
                    e if e.is_no_such_key() => Ok(Fetched::Missing),
                    e => Err(StoreError::Backend(Box::new(e))),
                };
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let seq = out
            .metadata()
            .and_then(|m| m.get(SEQ_METADATA))
            .and_then(|s| s.parse().ok());
        let modified = out.last_modified().and_then(|t| t.to_millis().ok()).unwrap_or(0);
        let seq = seq.unwrap_or(u64::try_from(modified).unwrap_or(0));
        let bytes = out.body.collect().await.map_err(|e| StoreError::Backend(Box::new(e)))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| StoreError::Corrupt(format!("s3://{}/{}: not UTF-8", self.bucket, self.key)))?;
        Ok(Fetched::Object { text, etag, seq })
    }
}
