//! Sending one request to a registry: the stored credential answers a 401's
//! challenge ([`super::auth`]), and the `Authorization` the registry accepted is
//! kept for the next request of the same scope, so a chain of requests (an upload's
//! POST and PUT, a manifest after its blobs) does not send each body once to be
//! refused first, nor fetch a token for every request.

use super::{auth, unreachable, Host, Purpose};
use crate::credentials::{self, Credential};
use crate::DockerError;
use reqwest::header::HeaderValue;
use reqwest::{Method, Response, StatusCode};

impl Host {
    /// The accepted `Authorization` for `scope`, if there is one.
    fn remembered(&self, scope: &Option<String>) -> Option<HeaderValue> {
        let accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        accepted
            .as_ref()
            .filter(|(s, _)| s == scope)
            .map(|(_, v)| v.clone())
    }

    /// Keeps `value`, accepted for `scope`, for the next request.
    fn remember(&self, scope: &Option<String>, value: HeaderValue) {
        let mut accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        *accepted = Some((scope.clone(), value));
    }
}

/// A request body and its content type.
pub(super) type Body = (&'static str, bytes::Bytes);

/// Sends the request; on a 401, answers the registry's challenge with the stored
/// credential (or anonymously, for a token service that allows it) and sends it
/// again. A 401 or 403 after that, or a 401 with nothing to answer it, is
/// [`DockerError::Unauthorized`].
pub(super) async fn send(
    h: &Host,
    method: Method,
    purpose: &Purpose<'_>,
) -> Result<Response, DockerError> {
    send_body(h, method, purpose, None).await
}

/// [`send`] with a body. The `Authorization` that last succeeded for the same scope
/// is sent with the first attempt (so an upload's body is not sent to be refused
/// first); a 401 to it is answered like any other.
pub(super) async fn send_body(
    h: &Host,
    method: Method,
    purpose: &Purpose<'_>,
    body: Option<Body>,
) -> Result<Response, DockerError> {
    const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";
    let url = format!("{}{}", h.base, purpose.path);
    let request = |authorization: Option<HeaderValue>| {
        let mut r = h
            .http
            .request(method.clone(), &url)
            .header("accept", ACCEPT);
        if let Some((content_type, bytes)) = &body {
            r = r.header("content-type", *content_type).body(bytes.clone());
        }
        match authorization {
            Some(a) => r.header(reqwest::header::AUTHORIZATION, a),
            None => r,
        }
    };
    let first = request(h.remembered(&purpose.scope))
        .send()
        .await
        .map_err(|e| unreachable(&h.name, &e))?;
    if first.status() != StatusCode::UNAUTHORIZED {
        return Ok(first);
    }
    let (authorization, granted) = answer(h, purpose, &first).await?;
    let second = request(Some(authorization.clone()))
        .send()
        .await
        .map_err(|e| unreachable(&h.name, &e))?;
    match second.status() {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if h.credential.is_some() => Err(refused(
            h,
            purpose,
            format!("it answered {} with the stored credential", second.status()),
        )),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Err(refused(h, purpose, no_credential()))
        }
        _ => {
            h.remember(&granted, authorization);
            Ok(second)
        }
    }
}

fn refused(h: &Host, purpose: &Purpose<'_>, message: String) -> DockerError {
    DockerError::Unauthorized {
        host: h.name.clone(),
        what: purpose.what.clone(),
        message,
    }
}

/// The `Authorization` value answering the challenge of the 401 `first`, and the
/// scope it is good for: a token's is the one it was asked for (the challenge's,
/// which may be narrower than the request's purpose), a password's the purpose's.
async fn answer(
    h: &Host,
    purpose: &Purpose<'_>,
    first: &Response,
) -> Result<(HeaderValue, Option<String>), DockerError> {
    let refused = |message: String| refused(h, purpose, message);
    let challenge = first
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::parse);
    match (challenge, &h.credential) {
        (None, _) => Err(refused(
            "it answered 401 with no challenge this client can answer".into(),
        )),
        (Some(auth::Challenge::Basic), None) => Err(refused(no_credential())),
        (Some(auth::Challenge::Basic), Some(Credential::IdentityToken(_))) => Err(refused(
            "it asks for a user name and password, and the stored credential is an identity token"
                .into(),
        )),
        (Some(auth::Challenge::Basic), Some(Credential::Basic { username, password })) => {
            let value = auth::basic(username, password).map_err(refused)?;
            Ok((value, purpose.scope.clone()))
        }
        (
            Some(auth::Challenge::Bearer {
                realm,
                service,
                scope,
            }),
            credential,
        ) => {
            let scope = scope.or_else(|| purpose.scope.clone());
            let token = auth::fetch_token(
                &h.http,
                &realm,
                service.as_deref(),
                scope.as_deref(),
                credential.as_ref(),
            )
            .await
            .map_err(|m| match credential {
                Some(_) => refused(format!("the stored credential was not accepted: {m}")),
                None => refused(format!("{}; {m}", no_credential())),
            })?;
            Ok((auth::bearer(&token).map_err(refused)?, scope))
        }
    }
}

fn no_credential() -> String {
    match credentials::config_dir() {
        Some(dir) => format!(
            "it requires credentials, and {} holds none for it",
            dir.join("config.json").display()
        ),
        None => "it requires credentials, and no Docker configuration was found (set DOCKER_CONFIG or HOME)".into(),
    }
}
