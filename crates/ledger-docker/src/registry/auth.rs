//! Authentication for the registry API: the `WWW-Authenticate` challenge of a 401,
//! read into a [`Challenge`], and the `Authorization` value that answers it.
//!
//! Registries ask in one of two ways (the distribution spec's token authentication,
//! and plain `htpasswd`): `Basic realm="…"`, answered with the stored user name and
//! password, or `Bearer realm="https://auth…",service="…",scope="…"`, answered by
//! fetching a short-lived token from the realm (with the stored credential, or
//! anonymously when there is none) and sending it as `Bearer <token>`. Every value
//! that carries a secret is a [`Secret`] and a sensitive header.

use crate::credentials::{Credential, Secret};
use base64::Engine as _;
use reqwest::header::HeaderValue;

/// What a registry's 401 asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Reads a `WWW-Authenticate` header value; `None` for a scheme this client does not
/// answer. When several challenges are offered, Bearer is preferred.
pub fn parse(header: &str) -> Option<Challenge> {
    let challenges = split_challenges(header);
    let bearer = challenges
        .iter()
        .find(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    if let Some((_, params)) = bearer {
        let get = |k: &str| {
            params
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        return Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        });
    }
    challenges
        .iter()
        .any(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .then_some(Challenge::Basic)
}

type Params = Vec<(String, String)>;

/// `Scheme k=v, k="v", Scheme2 …` → `[(scheme, params)]` (RFC 9110 §11.6.1: a
/// scheme is a token followed by a space; parameter values are tokens or quoted
/// strings with `\` escapes).
fn split_challenges(header: &str) -> Vec<(String, Params)> {
    let mut out: Vec<(String, Params)> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        if word.is_empty() {
            break;
        }
        let after_trimmed = after.trim_start();
        if let (Some(v), Some(last)) = (after_trimmed.strip_prefix('='), out.last_mut()) {
            let (value, remaining) = read_value(v.trim_start());
            last.1.push((word.to_owned(), value));
            rest = remaining;
        } else {
            out.push((word.to_owned(), Vec::new()));
            rest = after;
        }
    }
    out
}

/// A token or a quoted string at the start of `s`, and what follows it.
fn read_value(s: &str) -> (String, &str) {
    let Some(quoted) = s.strip_prefix('"') else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        return (s[..end].to_owned(), &s[end..]);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &quoted[i + 1..]),
            other => value.push(other),
        }
    }
    (value, "")
}

/// `Basic base64(user:password)`, marked sensitive.
pub fn basic(username: &str, password: &Secret) -> Result<HeaderValue, String> {
    let raw = Secret::new(format!("{username}:{}", password.expose()));
    let encoded = Secret::new(base64::engine::general_purpose::STANDARD.encode(raw.expose()));
    sensitive(&format!("Basic {}", encoded.expose()))
}

/// `Bearer <token>`, marked sensitive.
pub fn bearer(token: &Secret) -> Result<HeaderValue, String> {
    sensitive(&format!("Bearer {}", token.expose()))
}

fn sensitive(value: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|e| format!("the stored credential cannot be sent as a header ({e})"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// A token endpoint's answer: `token` (Docker) or `access_token` (OAuth2).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAnswer([redacted])")
    }
}

/// The most a token answer may be.
const TOKEN_ANSWER_LIMIT: usize = 1 << 20;

/// Fetches a bearer token from `realm` for `service` and `scope`: with the user name
/// and password as basic authentication (the Docker way), with an identity token as
/// an OAuth2 refresh-token grant, or anonymously without a credential. `Err` says
/// why, never with a secret.
pub async fn fetch_token(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scope: Option<&str>,
    credential: Option<&Credential>,
) -> Result<Secret, String> {
    let mut url =
        reqwest::Url::parse(realm).map_err(|e| format!("its token realm {realm:?}: {e}"))?;
    if url.scheme() != "https" && !url.host_str().is_some_and(super::is_loopback) {
        return Err(format!(
            "its token realm {realm} is not HTTPS; credentials are sent to no such address"
        ));
    }
    let mut form: Vec<(&str, &str)> = Vec::new();
    form.extend(service.map(|s| ("service", s)));
    form.extend(scope.map(|s| ("scope", s)));
    let request = match credential {
        Some(Credential::IdentityToken(token)) => {
            form.extend([
                ("grant_type", "refresh_token"),
                ("client_id", "ledger"),
                ("refresh_token", token.expose()),
            ]);
            let body = Secret::new(
                reqwest::Url::parse_with_params("x:", &form)
                    .map_err(|e| e.to_string())?
                    .query()
                    .unwrap_or_default()
                    .to_owned(),
            );
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.expose().to_owned())
        }
        other => {
            url.query_pairs_mut().extend_pairs(&form);
            let request = http.get(url);
            match other {
                Some(Credential::Basic { username, password }) => {
                    request.header(reqwest::header::AUTHORIZATION, basic(username, password)?)
                }
                _ => request,
            }
        }
    };
    let answer = request.send().await.map_err(|e| {
        format!(
            "its token service {realm} did not answer: {}",
            super::chain(&e)
        )
    })?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("its token service {realm} answered {status}"));
    }
    let body = super::limited_body(answer, TOKEN_ANSWER_LIMIT).await?;
    let parsed: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|e| format!("its token service {realm} sent no token: {e}"))?;
    parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| format!("its token service {realm} sent no token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_give_realm_service_and_scope() {
        let c = parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:shop/api:pull,delete""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:shop/api:pull,delete".into()),
            })
        );
    }

    #[test]
    fn basic_challenges_quoted_escapes_and_several_schemes() {
        assert_eq!(
            parse(r#"Basic realm="ledger-test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse("basic"), Some(Challenge::Basic));
        // Bearer wins when both are offered; escapes and unquoted tokens are read.
        let both = parse(r#"Basic realm="a, b", Bearer realm="https://x/t\"q",service=svc"#);
        assert_eq!(
            both,
            Some(Challenge::Bearer {
                realm: "https://x/t\"q".into(),
                service: Some("svc".into()),
                scope: None,
            })
        );
        assert_eq!(parse("Negotiate abc"), None);
        assert_eq!(parse(""), None);
        // A bearer challenge without a realm cannot be answered.
        assert_eq!(parse(r#"Bearer service="x""#), None);
    }

    #[tokio::test]
    async fn credentials_go_to_no_token_service_over_plain_http_off_loopback() {
        let tls = super::super::tls::for_host(std::path::Path::new("/nonexistent"), "x").unwrap();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.config)
            .build()
            .unwrap();
        let c = Credential::Basic {
            username: "ci".into(),
            password: Secret::new("pw".into()),
        };
        let e = fetch_token(&http, "http://auth.example/token", None, None, Some(&c))
            .await
            .unwrap_err();
        assert!(e.contains("is not HTTPS"), "{e}");
        let e = fetch_token(&http, "not a url", None, None, Some(&c))
            .await
            .unwrap_err();
        assert!(e.contains("token realm"), "{e}");
    }

    #[test]
    fn authorization_values_are_sensitive_and_encoded() {
        let v = basic("ci", &Secret::new("pw".into())).unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v.to_str().unwrap(), "Basic Y2k6cHc=");
        assert!(format!("{v:?}").contains("Sensitive"));
        assert!(bearer(&Secret::new("t".into())).unwrap().is_sensitive());
    }
}
