//! Fetching remote code over HTTP and HTTPS with ureq (rustls, the Mozilla roots of
//! webpki-roots), with a time-out per attempt and the source's retry policy. No proxy is used,
//! whatever the environment says: the host talks to the URI it was given.

use std::time::Duration;

use crate::{Remote, SourceError};

/// Why one attempt failed, and whether another may do better.
struct Failure {
    reason: String,
    retry: bool,
}

fn attempt(agent: &ureq::Agent, uri: &str, max_bytes: u64) -> Result<Vec<u8>, Failure> {
    let mut response = agent.get(uri).call().map_err(|e| Failure {
        retry: !matches!(e, ureq::Error::BadUri(_) | ureq::Error::BodyExceedsLimit(_)),
        reason: e.to_string(),
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(Failure {
            reason: format!("the server answered HTTP {status}"),
            retry: status >= 500 || status == 429,
        });
    }
    response.body_mut().with_config().limit(max_bytes).read_to_vec().map_err(|e| match e {
        ureq::Error::BodyExceedsLimit(_) => {
            Failure { reason: format!("the module is larger than the limit of {max_bytes} bytes"), retry: false }
        }
        other => Failure { reason: format!("reading the body failed: {other}"), retry: true },
    })
}

/// The bytes at `remote.uri` and the attempts it took.
pub(crate) fn fetch(remote: &Remote, max_bytes: u64) -> Result<(Vec<u8>, u32), SourceError> {
    if !(remote.uri.starts_with("http://") || remote.uri.starts_with("https://")) {
        return Err(SourceError::Fetch {
            uri: remote.uri.clone(),
            attempts: 0,
            reason: "only http:// and https:// URIs can be fetched".into(),
        });
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(remote.timeout))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(&agent, &remote.uri, max_bytes) {
            Ok(bytes) => return Ok((bytes, attempts)),
            Err(failure) if failure.retry && attempts <= remote.retry.num_retries => {
                std::thread::sleep(remote.retry.backoff(attempts - 1).min(Duration::from_secs(3600)));
            }
            Err(failure) => return Err(SourceError::Fetch { uri: remote.uri.clone(), attempts, reason: failure.reason }),
        }
    }
}
