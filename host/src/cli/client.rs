//! The HTTP client of the CLI's client commands: where the daemon is, which token to
//! use, one JSON request at a time, and how answers are printed.

use super::EXIT_USAGE;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;

/// Exit code of client commands when the daemon answered with an error.
pub const EXIT_API_ERROR: u8 = 1;

/// Where the daemon is and how to authenticate.
#[derive(Debug, Args, Clone)]
pub struct Remote {
    /// Daemon URL [default: $SUNDIAL_URL, else http://127.0.0.1:7780].
    #[arg(
        long,
        env = "SUNDIAL_URL",
        default_value = "http://127.0.0.1:7780",
        global = true
    )]
    pub server: String,
    /// API token [default: $SUNDIAL_TOKEN, else the admin token in $SUNDIAL_DATA
    /// (default ./sundial-data)/admin.token].
    #[arg(long, env = "SUNDIAL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the raw JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A failed client command: exit code and message.
pub type Failure = (u8, String);

impl Remote {
    fn token(&self) -> Result<String, Failure> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let dir = std::env::var_os("SUNDIAL_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| "sundial-data".into());
        let path = dir.join("admin.token");
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .map_err(|e| {
                (
                    EXIT_USAGE,
                    format!(
                        "no --token or SUNDIAL_TOKEN, and cannot read {}: {e}",
                        path.display()
                    ),
                )
            })
    }

    /// Send one request; returns the JSON answer (Null for 204), or the API's error.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let (status, value) = self.request(method, path, body).await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            let msg = value["error"]["message"].as_str().unwrap_or("(no message)");
            let code = value["error"]["code"].as_str().unwrap_or("error");
            Err((EXIT_API_ERROR, format!("{status} {code}: {msg}")))
        }
    }

    /// Send one request; returns the status and the JSON answer (Null for an empty or
    /// non-JSON body) whatever the status. Errs only when the daemon cannot be reached.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Failure> {
        let base = self.server.trim_end_matches('/');
        let authority = base.strip_prefix("http://").ok_or_else(|| {
            (
                EXIT_USAGE,
                format!("--server {base:?}: only http:// URLs are supported"),
            )
        })?;
        let token = self.token()?;
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| (EXIT_USAGE, format!("cannot reach the daemon at {base}: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| (EXIT_USAGE, format!("{base}: {e}")))?;
        tokio::spawn(conn);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", authority)
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(bytes::Bytes::from(bytes)))
            .map_err(|e| (EXIT_USAGE, e.to_string()))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| (EXIT_USAGE, format!("{base}: {e}")))?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| (EXIT_USAGE, format!("{base}: {e}")))?
            .to_bytes();
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        Ok((status.as_u16(), value))
    }

    /// GET every page of a paginated list (`path`, with or without a query), following
    /// `next_cursor`; returns `{key: [all items]}`.
    pub async fn call_all(&self, path: &str, key: &str) -> Result<Value, Failure> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}{sep}limit=1000&cursor={c}"),
                None => format!("{path}{sep}limit=1000"),
            };
            let mut page = self.call("GET", &page_path, None).await?;
            if let Some(Value::Array(a)) = page.get_mut(key).map(Value::take) {
                items.extend(a);
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(serde_json::json!({ key: items })),
            }
        }
    }

    /// Print `value` as JSON (with `--json`) or as the table `table` renders.
    pub fn print(&self, value: &Value, table: impl FnOnce(&Value) -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        } else {
            print!("{}", table(value));
        }
    }
}

/// Format rows as an aligned table with a header.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut out);
    for row in rows {
        line(row, &mut out);
    }
    out
}

/// A table of the objects in array `key` of `v`: one column per (header, field).
pub fn columns(v: &Value, key: &str, cols: &[(&str, &str)]) -> String {
    let rows = v[key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| cols.iter().map(|(_, f)| text(&item[*f])).collect())
                .collect()
        })
        .unwrap_or_default();
    let header: Vec<&str> = cols.iter().map(|(h, _)| *h).collect();
    table(&header, rows)
}

/// A JSON field as display text (`-` when absent), safe for a terminal ([`printable`]).
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => printable(s).into_owned(),
        other => other.to_string(),
    }
}

/// `s` with every character a terminal would act on instead of showing escaped as
/// `\u{..}` (`\n`, `\r`, `\t` for those): C0 and C1 controls, DEL, and the bidirectional
/// overrides that reorder what follows them. Stored data (a plugin's log line, an event's
/// subject) reaches the terminal only through this.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}
