//! The S3 server the benchmark measures against: the one `.ci/run` describes, else
//! moto's server started on loopback.
//!
//! When the server is a process on this machine, its CPU time is read around every
//! stage: a stage's S3 time is mostly the server's own work per request (moto spends
//! milliseconds of Python on each), which no client can overlap away, so the bench
//! reports it beside the stage's time (docs/performance.md).

use std::process::Command;

/// The S3 store to measure: the test server `.ci/run` describes (LEDGER_TEST_S3_*),
/// else a moto server started here on loopback if moto is installed, else none.
pub struct S3 {
    pub env: Vec<(String, String)>,
    server: Option<std::process::Child>,
    /// The server's process, when it runs on this machine (its CPU time is read).
    pid: Option<u32>,
}

impl S3 {
    /// Which server the S3 figures are of, for the table: one started for this run
    /// holds only the bench's objects; one already running (the test suite's, after
    /// `.ci/run`'s services) may hold many more and cost more CPU a request.
    pub fn described(&self) -> String {
        let endpoint = endpoint(&self.env).unwrap_or("?");
        if self.server.is_some() {
            format!("moto's server started by the bench on {endpoint}")
        } else {
            format!("the server LEDGER_TEST_S3_ENDPOINT names ({endpoint}), already running: it may hold other objects")
        }
    }

    /// CPU milliseconds the server's process has used so far (user and system, its
    /// finished threads included), when it is a process here.
    pub fn server_cpu_ms(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // After the command name (in parentheses, which may hold spaces): state is
        // field 3, utime and stime fields 14 and 15, in clock ticks.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // USER_HZ: 100 on every Linux architecture this runs on.
        Some(ticks as f64 * 10.0)
    }
}

/// The process listening on loopback `port`, from `/proc/net/tcp*` (the socket's
/// inode) and each process's open descriptors; `None` if it is not found here.
fn listener_pid(port: u16) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let local_port = f.get(1)?.rsplit_once(':')?.1;
                let listening = f.get(3) == Some(&"0A");
                (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                    .then(|| f.get(9).map(|s| (*s).to_owned()))?
            })
        })?;
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
                })
                .then_some(pid)
        })
}

/// The loopback port of an `http://127.0.0.1:PORT` (or `localhost`) endpoint.
fn loopback_port(endpoint: &str) -> Option<u16> {
    let rest = endpoint.strip_prefix("http://")?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':')?;
    matches!(host, "127.0.0.1" | "localhost").then(|| port.parse().ok())?
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

/// The server's address among the settings a store is opened with.
fn endpoint(env: &[(String, String)]) -> Option<&str> {
    env.iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .map(|(_, e)| e.as_str())
}

pub fn start_s3() -> Result<Option<S3>, String> {
    if let Some(env) = s3_env(&|n| std::env::var(n).ok()) {
        let pid = endpoint(&env)
            .and_then(loopback_port)
            .and_then(listener_pid);
        return Ok(Some(S3 {
            env,
            server: None,
            pid,
        }));
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
    let pid = Some(server.id());
    let mut s3 = S3 {
        env: Vec::new(),
        server: Some(server),
        pid,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_name_a_local_server() {
        assert_eq!(loopback_port("http://127.0.0.1:40161"), Some(40161));
        assert_eq!(loopback_port("http://localhost:9000/"), Some(9000));
        assert_eq!(loopback_port("https://s3.example.com:443"), None);
        assert_eq!(loopback_port("http://10.0.0.1:9000"), None);
    }

    #[test]
    fn the_table_says_whether_the_server_was_started_for_the_run() {
        let env = vec![(
            "AWS_ENDPOINT_URL".to_owned(),
            "http://127.0.0.1:40161".to_owned(),
        )];
        let running = S3 {
            env: env.clone(),
            server: None,
            pid: None,
        };
        let text = running.described();
        assert!(
            text.contains("LEDGER_TEST_S3_ENDPOINT") && text.contains("127.0.0.1:40161"),
            "{text}"
        );
        let started = S3 {
            env,
            server: Some(Command::new("true").spawn().unwrap()),
            pid: None,
        };
        let text = started.described();
        assert!(
            text.contains("started by the bench on http://127.0.0.1:40161"),
            "{text}"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_listening_process_and_its_cpu_time_are_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
        drop(listener);
        assert_eq!(listener_pid(port), None);
        let s3 = S3 {
            env: Vec::new(),
            server: None,
            pid: Some(std::process::id()),
        };
        // Busy until the work shows (a tick is 10 ms of CPU), at most 5 s.
        let before = s3.server_cpu_ms().unwrap();
        let clock = std::time::Instant::now();
        let mut x = 0u64;
        while s3.server_cpu_ms().unwrap() <= before && clock.elapsed().as_secs() < 5 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        assert!(s3.server_cpu_ms().unwrap() > before, "CPU work is counted");
    }
}
