//! The HTTP client of the CLI's client commands: where the daemon is, which token to
//! use, one JSON request at a time, and how answers are printed.

use super::EXIT_USAGE;
use super::endpoint::{
    ClientConfig, DEFAULT_URL, Token, load_client_config, parse_url, read_token_file, tls_config,
};
use clap::Args;
use serde_json::Value;
use std::path::PathBuf;

/// Exit code of client commands when the daemon answered with an error.
pub const EXIT_API_ERROR: u8 = 1;

/// Where the daemon is and how to authenticate.
#[derive(Debug, Args, Clone)]
pub struct Remote {
    /// Daemon URL, http:// or https:// [default: $SUNDIAL_URL, else `url` in the client
    /// config, else http://127.0.0.1:7780].
    #[arg(long, env = "SUNDIAL_URL", global = true)]
    pub server: Option<String>,
    /// API token [default: $SUNDIAL_TOKEN, else `token_file` in the client config, else
    /// the admin token in $SUNDIAL_DATA (default ./sundial-data)/admin.token].
    #[arg(long, env = "SUNDIAL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM certificates to trust for an https:// daemon, besides the public roots
    /// [default: $SUNDIAL_CA_FILE, else `ca_file` in the client config].
    #[arg(long, env = "SUNDIAL_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Print the raw JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A failed client command: exit code and message.
pub type Failure = (u8, String);

impl Remote {
    /// The daemon's URL: --server or SUNDIAL_URL, else the client config's `url`, else
    /// [`DEFAULT_URL`].
    pub fn server_url(&self) -> String {
        let config = load_client_config().ok().flatten();
        self.base_url(config.as_ref())
    }

    fn base_url(&self, config: Option<&(PathBuf, ClientConfig)>) -> String {
        self.server
            .clone()
            .or_else(|| config.and_then(|(_, c)| c.url.clone()))
            .unwrap_or_else(|| DEFAULT_URL.to_string())
    }

    /// The token and where it came from.
    fn token(&self, config: Option<&(PathBuf, ClientConfig)>) -> Result<Token, Failure> {
        if let Some(t) = &self.token {
            let from_env = std::env::var("SUNDIAL_TOKEN").is_ok_and(|e| e == *t);
            let source = if from_env {
                "SUNDIAL_TOKEN"
            } else {
                "the --token flag"
            };
            return Ok(Token {
                secret: t.clone(),
                source: source.into(),
            });
        }
        if let Some((path, c)) = config
            && let Some(file) = &c.token_file
        {
            return read_token_file(
                file,
                &format!("token_file of the client config {}:", path.display()),
            );
        }
        let dir = std::env::var_os("SUNDIAL_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| "sundial-data".into());
        let path = dir.join("admin.token");
        read_token_file(&path, "no --token or SUNDIAL_TOKEN; the admin token file")
    }

    /// Send one request; returns the JSON answer (Null for 204), or the API's error.
    /// A 401 says where the token came from.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let (status, value, token) = self.exchange(method, path, body).await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(api_failure(status, &value, &token))
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
        self.exchange(method, path, body)
            .await
            .map(|(status, value, _)| (status, value))
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value, Token), Failure> {
        let (status, body, token) = self.send_to(method, path, body.map(Payload::Json), None).await?;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        Ok((status, value, token))
    }

    /// POST `bytes` of `content_type` to `path` (a raw upload); the answer as for
    /// [`Remote::call`].
    pub async fn upload(
        &self,
        path: &str,
        content_type: &'static str,
        bytes: Vec<u8>,
    ) -> Result<Value, Failure> {
        let (status, body, token) = self
            .send_to("POST", path, Some(Payload::Raw(content_type, bytes)), None)
            .await?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(api_failure(status, &value, &token))
        }
    }

    /// GET `path` and write a successful answer's body to `dest` (a new file, mode
    /// 0600, synced); an error answer is returned as for [`Remote::call`].
    pub async fn download(&self, path: &str, dest: &std::path::Path) -> Result<u64, Failure> {
        let (status, body, token) = self.send_to("GET", path, None, Some(dest)).await?;
        if (200..300).contains(&status) {
            return std::fs::metadata(dest)
                .map(|m| m.len())
                .map_err(|e| (EXIT_USAGE, format!("{}: {e}", dest.display())));
        }
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Err(api_failure(status, &value, &token))
    }

    /// One request: (status, body, token). With `dest`, a 2xx body goes to that file
    /// instead (and the returned body is empty).
    async fn send_to(
        &self,
        method: &str,
        path: &str,
        body: Option<Payload<'_>>,
        dest: Option<&std::path::Path>,
    ) -> Result<(u16, bytes::Bytes, Token), Failure> {
        let config = load_client_config()?;
        let base = self.base_url(config.as_ref());
        let url = parse_url(&base).map_err(|e| (EXIT_USAGE, format!("--server {e}")))?;
        let token = self.token(config.as_ref())?;
        // No redirects, no proxy from the environment, no pool kept between commands:
        // one request to the daemon named, as the user gave it.
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if url.tls {
            let ca = self
                .ca_file
                .clone()
                .or_else(|| config.as_ref().and_then(|(_, c)| c.ca_file.clone()));
            let tls = tls_config(ca.as_deref())?;
            client = client.use_preconfigured_tls(rustls::ClientConfig::clone(&tls));
        }
        let client = client.build().map_err(|e| (EXIT_USAGE, format!("{base}: {e}")))?;
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| (EXIT_USAGE, e.to_string()))?;
        let scheme = if url.tls { "https" } else { "http" };
        let mut req = client
            .request(method, format!("{scheme}://{}{path}", url.authority))
            .bearer_auth(&token.secret);
        match body {
            Some(Payload::Json(body)) => {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            Some(Payload::Raw(content_type, bytes)) => {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(bytes);
            }
            None => {}
        }
        let res = req.send().await.map_err(|e| unreachable(&base, url.tls, &e))?;
        let status = res.status().as_u16();
        let body = match dest {
            Some(dest) if (200..300).contains(&status) => {
                save(res, &base, dest).await?;
                bytes::Bytes::new()
            }
            _ => res
                .bytes()
                .await
                .map_err(|e| (EXIT_USAGE, format!("{base}: {}", chain(&e))))?,
        };
        Ok((status, body, token))
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

    /// Report a change: `value` as JSON (with `--json`), else the line `text`.
    pub fn done(&self, value: Value, text: &str) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        } else {
            println!("{text}");
        }
    }

    /// `GET path`, printed field by field (or as JSON with `--json`).
    pub async fn show(&self, path: &str) -> Result<(), Failure> {
        let v = self.call("GET", path, None).await?;
        self.print(&v, fields);
        Ok(())
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

/// One record as `key  value` lines (nested values as compact JSON), every value safe
/// for a terminal.
pub fn fields(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return format!("{}\n", text(v));
    };
    let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, value) in map {
        let shown = match value {
            Value::Object(_) | Value::Array(_) => printable(&value.to_string()).into_owned(),
            other => text(other),
        };
        out.push_str(&format!("{k:<width$}  {shown}\n"));
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

/// The failure for an API error answer: `STATUS CODE: MESSAGE`, and for a 401 where
/// the token came from.
fn api_failure(status: u16, value: &Value, token: &Token) -> Failure {
    let msg = value["error"]["message"].as_str().unwrap_or("(no message)");
    let code = value["error"]["code"].as_str().unwrap_or("error");
    let mut text = format!("{status} {code}: {msg}");
    if status == 401 {
        text.push_str(&format!(" (the token came from {})", token.source));
    }
    (EXIT_API_ERROR, text)
}

/// Why the daemon could not be reached: a refused certificate says `TLS with`, the rest
/// `cannot reach the daemon at`, each with the whole chain of causes.
fn unreachable(base: &str, tls: bool, e: &reqwest::Error) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if tls && is_tls(c) {
            return (EXIT_USAGE, format!("TLS with {base}: {}", chain(e)));
        }
        cause = c.source();
    }
    (
        EXIT_USAGE,
        format!("cannot reach the daemon at {base}: {}", chain(e)),
    )
}

/// A rustls error, also inside an `io::Error` or a boxed error (whose `source` skips
/// what they wrap).
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
        return is_tls(inner);
    }
    false
}

/// An error and its causes, `: `-separated (reqwest's own message names only the URL).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Stream a successful answer's body into `dest`, a new file (mode 0600), synced.
async fn save(mut res: reqwest::Response, base: &str, dest: &std::path::Path) -> Result<(), Failure> {
    use std::io::Write;
    let broken = |e: &reqwest::Error| {
        (
            EXIT_USAGE,
            format!("{base}: the download broke off: {}", chain(e)),
        )
    };
    let local = |e: std::io::Error| (EXIT_USAGE, format!("{}: {e}", dest.display()));
    let mut file = sundial_store::backup::new_private_file(dest).map_err(local)?;
    while let Some(chunk) = res.chunk().await.map_err(|e| broken(&e))? {
        file.write_all(&chunk).map_err(local)?;
    }
    file.sync_all().map_err(local)
}

/// A request body.
enum Payload<'a> {
    /// JSON.
    Json(&'a Value),
    /// Bytes of a content type.
    Raw(&'static str, Vec<u8>),
}
