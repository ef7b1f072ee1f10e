//! Test support shared by the workspace's test suites (feature `test-util`): one call to the
//! local emulator's fault injector. The fixture user is [`crate::domain::User::fixture`].

use std::io::{Read, Write};

/// One call to the fault injector of the emulator at `endpoint` (`tools/emulator.py`, paths under
/// `/_fault`), over plain HTTP/1.1: the reply's JSON body, or why there is none (the emulator
/// unreachable, a status other than 200, a body that is not JSON).
pub fn emulator_control(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let body = body.map(serde_json::Value::to_string).unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(host).map_err(|e| format!("{host}: {e}"))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("{method} {path}: {e}"))?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).map_err(|e| format!("{method} {path}: {e}"))?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| format!("{method} {path}: no HTTP response: {raw}"))?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{method} {path}: {head}\n{body}"));
    }
    serde_json::from_str(body).map_err(|e| format!("{method} {path}: {e}: {body}"))
}
