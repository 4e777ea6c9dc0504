//! The S3 server the benchmark measures against: the one `.ci/run` describes, else
//! moto's server started on loopback.

use std::process::Command;

/// The S3 store to measure: the test server `.ci/run` describes (LEDGER_TEST_S3_*),
/// else a moto server started here on loopback if moto is installed, else none.
pub struct S3 {
    pub env: Vec<(String, String)>,
    server: Option<std::process::Child>,
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(child) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn s3_env(vars: &dyn Fn(&str) -> Option<String>) -> Option<Vec<(String, String)>> {
    let pairs = [
        ("AWS_ENDPOINT_URL", vars("LEDGER_TEST_S3_ENDPOINT")?),
        ("AWS_ACCESS_KEY_ID", vars("LEDGER_TEST_S3_ACCESS_KEY_ID")?),
        (
            "AWS_SECRET_ACCESS_KEY",
            vars("LEDGER_TEST_S3_SECRET_ACCESS_KEY")?,
        ),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
        (
            "LEDGER_STORE",
            format!(
                "s3://{}/bench-{}",
                vars("LEDGER_TEST_S3_BUCKET")?,
                std::process::id()
            ),
        ),
    ];
    Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

pub fn start_s3() -> Result<Option<S3>, String> {
    if let Some(env) = s3_env(&|n| std::env::var(n).ok()) {
        return Ok(Some(S3 { env, server: None }));
    }
    let probe = Command::new("python3")
        .args(["-c", "import moto.server, boto3"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("bench: no S3 server (set LEDGER_TEST_S3_* or pip install 'moto[server]'); local store only");
        return Ok(None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto: {e}"))?;
    let mut s3 = S3 {
        env: Vec::new(),
        server: Some(server),
    };
    let setup = crate::root().join(".ci").join("s3-setup.py");
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let out = Command::new("python3")
            .arg(&setup)
            .args([&endpoint, &endpoint, "ledger-bench"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let vars = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
            };
            s3.env = s3_env(&vars).ok_or("s3-setup.py printed no settings")?;
            eprintln!("bench: started moto's S3 server on {endpoint}");
            return Ok(Some(s3));
        }
    }
    Err(format!("moto did not come up on {endpoint}"))
}
