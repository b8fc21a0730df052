//! `kairos rules publish|history|rollback`: the rules file in a versioned S3
//! bucket. Nothing invalid is ever uploaded (the file is compiled first);
//! each version carries who published it, a message and the rules'
//! fingerprint as object metadata.

use aws_sdk_s3::Client;
use kairos_rules::RuleSet;
use std::collections::HashMap;

/// Metadata names (S3 stores them as `x-amz-meta-<name>`).
pub(crate) const BY: &str = "kairos-by";
pub(crate) const MESSAGE: &str = "kairos-message";
const FINGERPRINT: &str = "kairos-fingerprint";

/// One published version, as `history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    /// The S3 object version id (what `rollback --to` takes).
    pub version: String,
    /// When it was published (RFC 3339).
    pub at: String,
    /// Who published it.
    pub by: String,
    /// The publisher's message.
    pub message: String,
    /// The rules' fingerprint (hex), as transitions' rule versions derive from it.
    pub fingerprint: String,
    /// Whether it is the version in force.
    pub latest: bool,
}

/// An S3 client for `kairos` commands: path-style on a local endpoint (`AWS_ENDPOINT_URL`).
pub async fn client() -> Client {
    kairos_store::s3_client(&kairos_store::sdk::load_with_sdk_defaults().await)
}

/// Compiles `text`, then uploads it to `uri` with who and why; returns the new version id.
/// The upload is conditional on the version this call reads (see [`publish_on`]).
pub async fn publish(s3: &Client, uri: &str, text: &str, by: &str, message: &str) -> Result<String, String> {
    publish_on(s3, uri, text, by, message, None).await
}

/// Compiles `text`, then uploads it to `uri` on top of the version in force,
/// which must be `base` when given (the version an editor read). The write is
/// an S3 conditional write: `If-Match` the ETag of the version read (or
/// `If-None-Match: *` when nothing was published yet), so a publish that
/// raced another one is refused with both versions named, never written
/// over the other.
pub async fn publish_on(
    s3: &Client,
    uri: &str,
    text: &str,
    by: &str,
    message: &str,
    base: Option<&str>,
) -> Result<String, String> {
    let rules = RuleSet::from_yaml(text).map_err(|e| format!("not published: {e}"))?;
    let read = read(s3, uri).await?;
    if let Some(base) = base.filter(|b| Some(*b) != read.version.as_deref()) {
        return Err(conflict(uri, base, read.version.as_deref()));
    }
    upload(s3, uri, text, &rules, (by, message), &read).await
}

/// Compiles `text`, then uploads it to `uri` only if the version in force is
/// still the one `read` saw (the S3 conditional write); returns the new version id.
pub async fn publish_read(
    s3: &Client,
    uri: &str,
    text: &str,
    by: &str,
    message: &str,
    read: &Read,
) -> Result<String, String> {
    let rules = RuleSet::from_yaml(text).map_err(|e| format!("not published: {e}"))?;
    upload(s3, uri, text, &rules, (by, message), read).await
}

/// The conditional upload of compiled rules, with who and why (see [`publish_read`]).
async fn upload(
    s3: &Client,
    uri: &str,
    text: &str,
    rules: &RuleSet,
    (by, message): (&str, &str),
    read: &Read,
) -> Result<String, String> {
    let (bucket, key) = kairos_store::parse_s3_uri(uri)?;
    let metadata = HashMap::from([
        (
            kairos_store::RULES_SEQ_METADATA.to_string(),
            read.next_seq().to_string(),
        ),
        (BY.to_string(), ascii(by)),
        (MESSAGE.to_string(), ascii(message)),
        (FINGERPRINT.to_string(), format!("{:016x}", rules.fingerprint())),
    ]);
    let put = s3.put_object().bucket(bucket).key(key).set_metadata(Some(metadata));
    let put = match &read.etag {
        Some(etag) => put.if_match(etag),
        None => put.if_none_match("*"),
    };
    match put.body(text.as_bytes().to_vec().into()).send().await {
        Ok(out) => Ok(out.version_id().unwrap_or("null").to_string()),
        Err(err) if precondition_failed(&err) => {
            let now = self::read(s3, uri).await?;
            let was = read.version.as_deref().unwrap_or("none");
            Err(conflict(uri, was, now.version.as_deref()))
        }
        Err(err) => Err(format!(
            "uploading to {uri}: {}",
            aws_sdk_s3::error::DisplayErrorContext(err)
        )),
    }
}

/// The refusal of a publish that another publish overtook.
fn conflict(uri: &str, read: &str, now: Option<&str>) -> String {
    let now = now.unwrap_or("none");
    format!(
        "not published: version {now} of {uri} was published after version {read}, which this publish was based on; \
         read the rules again and reapply your change"
    )
}

/// Whether S3 refused a conditional write (412 Precondition Failed, or 409
/// ConditionalRequestConflict when two conditional writes overlap).
fn precondition_failed<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    err.raw_response()
        .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412))
}

/// The version in force, as a publish reads it.
#[derive(Debug, Clone)]
pub struct Read {
    /// Its S3 version id (`None`: nothing published yet).
    pub version: Option<String>,
    /// Its ETag, which the conditional write must match.
    etag: Option<String>,
    /// Its sequence (or its time, for an object without one), in milliseconds.
    seq: u64,
}

impl Read {
    /// The sequence of the next version: the time in milliseconds, raised
    /// above the current version's so it only grows (even with a clock behind).
    fn next_seq(&self) -> u64 {
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        if self.etag.is_none() {
            return now;
        }
        now.max(self.seq + 1)
    }
}

/// Reads the version of `uri` in force (a `HEAD`), for [`publish_read`].
pub async fn read(s3: &Client, uri: &str) -> Result<Read, String> {
    let (bucket, key) = kairos_store::parse_s3_uri(uri)?;
    let head = match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => head,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {
            return Ok(Read {
                version: None,
                etag: None,
                seq: 0,
            })
        }
        Err(err) => {
            let err = aws_sdk_s3::error::DisplayErrorContext(err);
            return Err(format!("reading the current version of s3://{bucket}/{key}: {err}"));
        }
    };
    let meta = head.metadata().and_then(|m| m.get(kairos_store::RULES_SEQ_METADATA));
    let modified = head.last_modified().and_then(|t| t.to_millis().ok()).unwrap_or(0);
    let seq = meta
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::try_from(modified).unwrap_or(0));
    Ok(Read {
        version: Some(head.version_id().unwrap_or("null").to_string()),
        etag: head.e_tag().map(str::to_string),
        seq,
    })
}

/// The versions of `uri`, newest first.
pub async fn history(s3: &Client, uri: &str) -> Result<Vec<Version>, String> {
    latest(s3, uri, usize::MAX).await
}

/// The `limit` newest versions of `uri`, newest first (one `HEAD` each, for who and why).
pub async fn latest(s3: &Client, uri: &str, limit: usize) -> Result<Vec<Version>, String> {
    let (bucket, key) = kairos_store::parse_s3_uri(uri)?;
    let fail = |e: &dyn std::fmt::Display| format!("listing {uri}: {e}");
    let list = s3.list_object_versions().bucket(bucket).prefix(key).send().await;
    let list = list.map_err(|e| fail(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let mut versions = Vec::new();
    for v in list.versions().iter().filter(|v| v.key() == Some(key)).take(limit) {
        let id = v.version_id().unwrap_or("null").to_string();
        let head = s3.head_object().bucket(bucket).key(key).version_id(&id).send().await;
        let head = head.map_err(|e| fail(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
        let meta = |name: &str| head.metadata().and_then(|m| m.get(name)).cloned().unwrap_or_default();
        versions.push(Version {
            at: v.last_modified().map(|t| t.to_string()).unwrap_or_default(),
            by: meta(BY),
            message: meta(MESSAGE),
            fingerprint: meta(FINGERPRINT),
            latest: v.is_latest().unwrap_or(false),
            version: id,
        });
    }
    // S3 lists a key's versions newest first.
    Ok(versions)
}

/// Republishes version `to` of `uri` (compiled again first) as the newest; returns the new version id.
pub async fn rollback(s3: &Client, uri: &str, to: &str, by: &str) -> Result<String, String> {
    let text = text_of(s3, uri, to).await?;
    publish(s3, uri, &text, by, &format!("rollback to {to}")).await
}

/// The text of version `version` of `uri`.
pub async fn text_of(s3: &Client, uri: &str, version: &str) -> Result<String, String> {
    let (bucket, key) = kairos_store::parse_s3_uri(uri)?;
    let get = s3.get_object().bucket(bucket).key(key).version_id(version).send().await;
    let out = get.map_err(|e| {
        format!(
            "reading version {version} of {uri}: {}",
            aws_sdk_s3::error::DisplayErrorContext(e)
        )
    })?;
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| format!("reading version {version}: {e}"))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("version {version} is not UTF-8"))
}

/// S3 metadata is ASCII: anything else is replaced by `?`.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect()
}
