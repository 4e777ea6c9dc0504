//! A man in the middle of a real registry: a loopback HTTP proxy in front of the
//! anonymous test registry that notes every request (method and path) and, when
//! told to, changes one byte of every blob it passes on, as a compromised registry
//! or network would. One request per connection (`Connection: close` both ways);
//! anything that is not HTTP (a TLS handshake) gets a plain-text 400, as the
//! registry itself would answer it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Proxy {
    /// `127.0.0.1:port`, the registry host to use.
    pub host: String,
    seen: Arc<Mutex<Vec<String>>>,
    tamper: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts the proxy in front of `upstream` (`host:port`, plain HTTP) on the
    /// current tokio runtime.
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            host: listener.local_addr().unwrap().to_string(),
            seen: Arc::default(),
            tamper: Arc::default(),
        };
        let (upstream, p) = (upstream.to_owned(), proxy.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(p.clone().serve(client, upstream.clone()));
            }
        });
        proxy
    }

    /// Every `METHOD /path` passed on so far, and forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// From now on, blobs are passed on with their last byte changed.
    pub fn tamper(&self) {
        self.tamper.store(true, Ordering::SeqCst);
    }

    async fn serve(self, mut client: TcpStream, upstream: String) {
        let Some((head, body)) = read_request(&mut client).await else {
            let _ = client
                .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .await;
            return;
        };
        let request_line = head.lines().next().unwrap_or_default().to_owned();
        let mut parts = request_line.split(' ');
        let (method, path) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        self.seen.lock().unwrap().push(format!("{method} {path}"));
        let forwarded: String = head
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let mut up = TcpStream::connect(&upstream).await.unwrap();
        up.write_all(format!("{forwarded}Connection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        up.write_all(&body).await.unwrap();
        let mut response = Vec::new();
        up.read_to_end(&mut response).await.unwrap();
        let is_blob = method == "GET" && path.contains("/blobs/sha256:");
        if is_blob && self.tamper.load(Ordering::SeqCst) && response.starts_with(b"HTTP/1.1 200") {
            if let Some(last) = response.last_mut() {
                *last ^= 0x20;
            }
        }
        let _ = client.write_all(&response).await;
        let _ = client.shutdown().await;
    }
}

/// The request head (without its blank line) and body; `None` when it is not HTTP.
async fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 16 || !chunk[0].is_ascii_uppercase() && buf.is_empty() {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).ok()?;
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}
