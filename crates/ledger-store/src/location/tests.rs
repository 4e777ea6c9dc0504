//! Store locations: parsing a `--store` value, and opening each bucket service as far
//! as the test machines can reach one (a real S3-API server; GCS and Azure clients up
//! to what they refuse before a request, and an Azure endpoint on loopback that does
//! not answer).

use super::*;
use crate::testing::S3Server;
use crate::StoreError;

#[test]
fn locations() {
    assert_eq!(
        StoreLocation::parse("file:///tmp/x").unwrap(),
        StoreLocation::Local("/tmp/x".into())
    );
    assert_eq!(
        StoreLocation::parse("relative/dir").unwrap(),
        StoreLocation::Local("relative/dir".into())
    );
    let StoreLocation::Bucket(b) = StoreLocation::parse("s3://evidence/team/app/").unwrap() else {
        panic!("not a bucket")
    };
    assert_eq!(
        (b.service, b.name.as_str(), b.prefix.as_str()),
        (Service::S3, "evidence", "team/app")
    );
    assert_eq!(b.to_string(), "s3://evidence/team/app");
    let StoreLocation::Bucket(b) = StoreLocation::parse("gs://bkt").unwrap() else {
        panic!("not a bucket")
    };
    assert_eq!((b.service, b.prefix.as_str()), (Service::Gcs, ""));
    for (bad, says) in [
        ("ftp://x", "not supported"),
        ("", "empty"),
        ("s3://", "bucket name is missing"),
        ("s3:///prefix", "bucket name is missing"),
        (
            "s3://key:secret@bucket/p",
            "credentials and endpoint in the environment",
        ),
        ("s3://bucket/a//b", "prefix"),
        ("s3://bucket/a/../b", "prefix"),
    ] {
        let e = StoreLocation::parse(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad:?}: {e}");
    }
}

#[cfg(not(feature = "gcs"))]
#[tokio::test]
async fn a_backend_left_out_of_the_build_says_so() {
    let e = Store::open(StoreLocation::parse("gs://bucket/p").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("`gcs`"), "{e}");
}

/// A loopback port nothing listens on: connection refused, retried a few times.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `e` says the store at `location` could not be reached on loopback `port`.
fn assert_unreachable(e: &StoreError, port: u16, location: &str) {
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains(location), "{msg}");
}

/// The GCS and Azure clients are built (CI's test build has both features) and refuse
/// a setting they do not know before anything is sent.
#[cfg(all(feature = "gcs", feature = "azure"))]
#[tokio::test]
async fn gcs_and_azure_refuse_an_unknown_client_setting() {
    for url in ["gs://evidence/p", "az://evidence/p"] {
        let StoreLocation::Bucket(b) = StoreLocation::parse(url).unwrap() else {
            panic!("{url}: not a bucket")
        };
        let e = Store::open(StoreLocation::Bucket(b.with_option("no_such_setting", "1")))
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::InvalidLocation { .. }),
            "{url}: {e}"
        );
        assert!(e.to_string().contains("`no_such_setting`"), "{url}: {e}");
        assert!(e.to_string().contains(url), "{url}: {e}");
    }
}

/// An Azure endpoint nothing listens on (loopback) fails the open, naming it.
#[cfg(feature = "azure")]
#[tokio::test]
async fn an_unreachable_azure_endpoint_fails_fast_naming_it() {
    let port = closed_port();
    let StoreLocation::Bucket(b) = StoreLocation::parse("az://evidence/p").unwrap() else {
        panic!("not a bucket")
    };
    let b = b
        .with_option("azure_storage_account_name", "devstoreaccount1")
        .with_option("azure_storage_endpoint", format!("http://127.0.0.1:{port}"))
        .with_option("azure_allow_http", "true")
        .with_option("azure_skip_signature", "true");
    let e = Store::open(StoreLocation::Bucket(b)).await.unwrap_err();
    assert_unreachable(&e, port, "az://evidence/p");
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_naming_the_endpoint() {
    let port = closed_port();
    let server = S3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        strict_endpoint: String::new(),
        bucket: "nowhere".into(),
        access_key_id: "id".into(),
        secret_access_key: "secret".into(),
    };
    let e = server.open("p").await.unwrap_err();
    assert_unreachable(&e, port, "s3://nowhere/p");
}

#[tokio::test]
async fn wrong_credentials_are_refused_naming_the_endpoint() {
    let Some(mut server) = S3Server::from_env() else {
        return;
    };
    server.endpoint = server.strict_endpoint.clone();
    server.secret_access_key = "not-the-secret".into();
    server.access_key_id = "AKIANOTAKEY".into();
    let e = server.open("wrong-credentials").await.unwrap_err();
    assert!(matches!(e, StoreError::Denied { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&server.endpoint), "{msg}");
    assert!(msg.contains("AWS_ACCESS_KEY_ID"), "{msg}");
    assert!(!msg.contains("not-the-secret"), "{msg}");
}

#[tokio::test]
async fn a_missing_bucket_is_reported_at_open() {
    let Some(mut server) = S3Server::from_env() else {
        return;
    };
    server.bucket = "no-such-bucket-for-ledger".into();
    let e = server.open("p").await.unwrap_err();
    assert!(e.to_string().contains("no-such-bucket-for-ledger"), "{e}");
}
