//! Loopback servers for the client tests: an axum fake that records every request and answers
//! from a closure, and raw TCP servers that misbehave in ways axum will not (hang, hang up).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use shotlist::api::{ApiKey, Client, ClientConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A distinctive key: the secrecy tests look for it in every error and Debug output.
pub const KEY: &str = "sk-SHOTLIST-TEST-7f3a9c-DO-NOT-LEAK";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// The path exactly as sent (still percent-encoded).
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the fake answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub fn json(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

pub fn raw(status: u16, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: body.into(),
    }
}

/// `rest` after a minimal MP4 `ftyp` box, so downloads take it for a video.
pub fn mp4(rest: impl AsRef<[u8]>) -> Vec<u8> {
    let mut bytes = b"\0\0\0\x0cftypisom".to_vec();
    bytes.extend_from_slice(rest.as_ref());
    bytes
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

struct FakeState {
    seen: Mutex<Vec<Seen>>,
    handler: Box<Handler>,
}

/// A running axum fake.
pub struct Fake {
    pub base: String,
    state: Arc<FakeState>,
}

impl Fake {
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        let state = Arc::new(FakeState {
            seen: Mutex::new(Vec::new()),
            handler: Box::new(handler),
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        Fake {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// A fake that always gives the same answer.
    pub async fn always(reply: impl Fn() -> Reply + Send + Sync + 'static) -> Fake {
        Fake::start(move |_| reply()).await
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn client(&self) -> Client {
        client_for(&self.base, Duration::from_secs(5))
    }
}

async fn record(
    State(state): State<Arc<FakeState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method,
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        headers,
        body,
        peer,
    };
    let reply = (state.handler)(&seen);
    state.seen.lock().unwrap().push(seen);
    let mut response = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

pub fn client_for(base: &str, timeout: Duration) -> Client {
    Client::new(ClientConfig {
        base_url: base.to_string(),
        api_key: ApiKey::new(KEY),
        timeout,
    })
    .expect("client")
}

/// How a raw TCP fake behaves once it has read a whole request.
#[derive(Clone)]
pub enum Misbehave {
    /// Closes the connection without a word.
    HangUp,
    /// Keeps the connection open and never answers.
    Silent,
    /// Sends these bytes (e.g. a head promising more body than follows), then closes.
    Truncated(&'static [u8]),
    /// Sends these bytes, then keeps the connection open without another word.
    Stall(&'static [u8]),
}

/// A raw TCP server; returns its base URL and a counter of requests it read in full.
pub async fn misbehaving(how: Misbehave) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(Mutex::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let how = how.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await {
                    *counter.lock().unwrap() += 1;
                }
                match how {
                    Misbehave::HangUp => drop(socket),
                    Misbehave::Silent => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(socket);
                    }
                    Misbehave::Stall(bytes) => {
                        let _ = socket.write_all(bytes).await;
                        let _ = socket.flush().await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(socket);
                    }
                    Misbehave::Truncated(bytes) => {
                        let _ = socket.write_all(bytes).await;
                        let _ = socket.flush().await;
                        drop(socket);
                    }
                }
            });
        }
    });
    (base, count)
}

/// A raw TCP server that answers every request with `head`, then `start`, then `fill` bytes in
/// 64 KiB chunks (one every `every`) until the client hangs up. Returns its base URL and the
/// number of body bytes it managed to send.
pub async fn endless(
    head: &'static str,
    start: &'static [u8],
    every: Duration,
) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let sent = Arc::new(AtomicU64::new(0));
    let total = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let total = total.clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                let chunk = vec![b'x'; 64 * 1024];
                let mut next: &[u8] = start;
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    if socket.write_all(next).await.is_err() {
                        return;
                    }
                    total.fetch_add(next.len() as u64, Ordering::Relaxed);
                    next = &chunk;
                    if !every.is_zero() {
                        tokio::time::sleep(every).await;
                    }
                }
            });
        }
    });
    (base, sent)
}

/// Reads one request head and its `Content-Length` body; false if the peer went away first.
async fn read_request(socket: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return true;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A base URL where nothing listens.
pub async fn refused() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}
