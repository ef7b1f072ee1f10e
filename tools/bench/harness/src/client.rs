//! A minimal HTTP/1.1 client over one connection: keep-alive when the server allows it,
//! a new connection when it does not (gunicorn's sync workers close after every response).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// One request, as the specs describe it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: hyper::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
}

impl Req {
    pub fn get(path: &str) -> Self {
        Self {
            method: hyper::Method::GET,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn post_json(path: &str, body: &Value) -> Self {
        Self {
            method: hyper::Method::POST,
            path: path.to_owned(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(Bytes::from(body.to_string())),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// From a spec object: `{"method", "path", "headers": {..}, "body": <json or string>}`.
    pub fn from_spec(v: &Value) -> Result<Self, String> {
        let method = v["method"].as_str().unwrap_or("GET");
        let method = hyper::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let path = v["path"].as_str().ok_or("request without a path")?.to_owned();
        let mut headers: Vec<(String, String)> = v["headers"]
            .as_object()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
            .unwrap_or_default();
        let body = match &v["body"] {
            Value::Null => None,
            Value::String(s) => Some(Bytes::from(s.clone())),
            other => {
                if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                Some(Bytes::from(other.to_string()))
            }
        };
        Ok(Self {
            method,
            path,
            headers,
            body,
        })
    }
}

pub struct Client {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    pub connects: u64,
}

/// `http://127.0.0.1:PORT` → the socket address (loopback only).
pub fn parse_base(base: &str) -> Result<SocketAddr, String> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base}: only http:// URLs"))?
        .trim_end_matches('/');
    let addr: SocketAddr = hostport.parse().map_err(|e| format!("{base}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{base}: the bench only talks to loopback addresses"));
    }
    Ok(addr)
}

impl Client {
    pub fn new(base: &str) -> Result<Self, String> {
        let addr = parse_base(base)?;
        Ok(Self {
            addr,
            host: addr.to_string(),
            sender: None,
            connects: 0,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(self.addr).await.map_err(|e| format!("connect {}: {e}", self.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        self.connects += 1;
        Ok(())
    }

    fn build(&self, req: &Req) -> Result<hyper::Request<Full<Bytes>>, String> {
        let mut b = hyper::Request::builder()
            .method(req.method.clone())
            .uri(req.path.as_str())
            .header("host", self.host.as_str())
            .header("accept", "application/json");
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b.body(Full::new(req.body.clone().unwrap_or_default()))
            .map_err(|e| e.to_string())
    }

    /// Sends one request; returns the status and the body. A kept-alive connection that the
    /// server closed meanwhile is replaced once.
    pub async fn send(&mut self, req: &Req) -> Result<(u16, Bytes), String> {
        for attempt in 0..2 {
            let fresh = match &self.sender {
                Some(s) if !s.is_closed() => false,
                _ => {
                    self.connect().await?;
                    true
                }
            };
            let request = self.build(req)?;
            let Some(sender) = self.sender.as_mut() else {
                return Err("no connection".into());
            };
            if sender.ready().await.is_err() {
                self.sender = None;
                if fresh || attempt == 1 {
                    return Err("connection closed before the request".into());
                }
                continue;
            }
            match sender.send_request(request).await {
                Ok(resp) => {
                    let close = resp
                        .headers()
                        .get("connection")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                    let status = resp.status().as_u16();
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| format!("body: {e}"))?
                        .to_bytes();
                    if close {
                        self.sender = None;
                    }
                    return Ok((status, body));
                }
                Err(e) => {
                    self.sender = None;
                    // Retry only a request that never left (a refresh must not be replayed).
                    if fresh || attempt == 1 || !e.is_canceled() {
                        return Err(format!("request: {e}"));
                    }
                }
            }
        }
        Err("request failed".into())
    }
}
