//! The demo's service: a tiny HTTP server, std only, so it links statically into a
//! `FROM scratch` image (no image can be pulled here, and scratch needs no base).
//!
//! `ledger-example-service` serves on `$PORT` (default 8080):
//! `GET /health` → `ok` (or 500 when `UNHEALTHY=1`, to exercise failed deploys),
//! `GET /` → a JSON line naming the service and its `$APP_VERSION`.
//! `ledger-example-service health` probes `/health` on loopback and exits 0 or 1; the
//! image's `HEALTHCHECK` runs it, since a scratch image has no shell or curl.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn port() -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080)
}

fn respond(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Drain the headers (and a small body, if any) so the client sees a clean reply.
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length.min(64 * 1024)];
    let _ = reader.read_exact(&mut body);

    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let unhealthy = std::env::var("UNHEALTHY").as_deref() == Ok("1");
    let (status, text) = match (method, path) {
        ("GET" | "HEAD", "/health") if unhealthy => (500, "unhealthy\n".to_owned()),
        ("GET" | "HEAD", "/health") => (200, "ok\n".to_owned()),
        ("GET", "/") => {
            let version = std::env::var("APP_VERSION").unwrap_or_else(|_| "unknown".into());
            (
                200,
                format!("{{\"service\":\"ledger-example\",\"version\":\"{version}\"}}\n"),
            )
        }
        _ => (404, "not found\n".to_owned()),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let reply = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        text.len(),
        if method == "HEAD" { "" } else { &text }
    );
    let _ = stream.write_all(reply.as_bytes());
}

fn serve() -> std::io::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port()))?;
    eprintln!("ledger-example-service listening on port {}", port());
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || respond(stream));
    }
    Ok(())
}

fn health() -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port()).into(), Duration::from_secs(2))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("health") => std::process::exit(if health() { 0 } else { 1 }),
        None => {
            if let Err(e) = serve() {
                eprintln!("ledger-example-service: {e}");
                std::process::exit(1);
            }
        }
        Some(other) => {
            eprintln!("usage: ledger-example-service [health] (got {other:?})");
            std::process::exit(2);
        }
    }
}
