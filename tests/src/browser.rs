//! A headless Chromium driven over the Chrome DevTools Protocol, for the dashboard's
//! browser tests: Debian's `chromium` (or `SUNDIAL_CHROMIUM`) started with
//! `--remote-debugging-pipe`, so the protocol's NUL-separated JSON messages travel over
//! file descriptors 3 (to the browser) and 4 (from it): no port, no WebSocket client.
//!
//! Only what the tests use: one page (a flat session), navigation, script evaluation,
//! key presses, viewport and colour-scheme emulation, screenshots.

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one protocol call or wait may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The browser binary: `SUNDIAL_CHROMIUM`, else `chromium` on the PATH.
pub fn chromium_binary() -> String {
    std::env::var("SUNDIAL_CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

/// A running headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    to_browser: File,
    from_browser: mpsc::Receiver<Value>,
    /// Events read while waiting for an answer, oldest first.
    events: VecDeque<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

/// A pipe whose two ends are close-on-exec and numbered 10 or more, so no other child
/// inherits them and moving the browser's ends onto 3 and 4 cannot clobber one.
fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes; each is moved
    // with fcntl(F_DUPFD_CLOEXEC) and the original closed.
    unsafe {
        assert_eq!(
            libc::pipe(fds.as_mut_ptr()),
            0,
            "pipe: {}",
            std::io::Error::last_os_error()
        );
        for fd in &mut fds {
            let high = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
            assert!(high >= 10, "fcntl: {}", std::io::Error::last_os_error());
            libc::close(*fd);
            *fd = high;
        }
    }
    (fds[0], fds[1])
}

impl Browser {
    /// Start Chromium (headless, no sandbox, no network of its own, a fresh profile)
    /// and open a blank page. Fails the test with what to do when it is missing.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (browser_reads, we_write) = pipe();
        let (we_read, browser_writes) = pipe();
        let mut command = Command::new(chromium_binary());
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec; dup2 leaves
        // the new 3 and 4 open across exec, every other end of the pipes closes.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(browser_reads, 3) < 0 || libc::dup2(browser_writes, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {:?} ({e}): the browser tests need Chromium; the README's test \
                 command (scripts/test) installs Debian's package",
                chromium_binary()
            )
        });
        // SAFETY: these are our ends of the pipes, owned from here on.
        unsafe {
            libc::close(browser_reads);
            libc::close(browser_writes);
        }
        let to_browser = unsafe { File::from_raw_fd(we_write) };
        let from = unsafe { File::from_raw_fd(we_read) };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                if message.last() == Some(&0) {
                    message.pop();
                }
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && tx.send(value).is_err()
                {
                    break;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            to_browser,
            from_browser: rx,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.send(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = browser.send(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// One protocol call; its result. Events read meanwhile are kept for [`Browser::wait_for`].
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to_browser.write_all(&bytes).expect("the browser went away");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{method}: no answer from the browser"));
            if got["id"] == json!(id) {
                if let Some(e) = got.get("error") {
                    panic!("{method}: {e}");
                }
                return got["result"].clone();
            }
            if got.get("method").is_some() {
                self.events.push_back(got);
            }
        }
    }

    /// A call on the page's session.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    /// Wait for the next event `method` of the page (those before it are dropped).
    pub fn wait_for(&mut self, method: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            while let Some(event) = self.events.pop_front() {
                if event["method"] == json!(method) {
                    return event["params"].clone();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let got = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {method} event from the browser"));
            self.events.push_back(got);
        }
    }

    /// Drop the events read so far.
    fn forget_events(&mut self) {
        while let Ok(got) = self.from_browser.try_recv() {
            drop(got);
        }
        self.events.clear();
    }

    /// Open `url` and wait until it has loaded.
    pub fn goto(&mut self, url: &str) {
        self.forget_events();
        let nav = self.call("Page.navigate", json!({"url": url}));
        if let Some(e) = nav.get("errorText") {
            panic!("opening {url}: {e}");
        }
        self.wait_for("Page.loadEventFired");
    }

    /// Evaluate `expression` in the page (promises awaited); its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expression:.200}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Run `action` (script that submits a form or follows a link) and wait for the page
    /// it leads to.
    pub fn navigate_by(&mut self, action: &str) {
        self.forget_events();
        self.eval(action);
        self.wait_for("Page.loadEventFired");
    }

    /// Click the element `selector` and wait for the page it leads to.
    pub fn click(&mut self, selector: &str) {
        let script = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) throw new Error('no ' + {0}); e.click(); }})()",
            json!(selector)
        );
        self.navigate_by(&script);
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The current URL's path and query.
    pub fn path(&mut self) -> String {
        self.eval("location.pathname + location.search")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until `condition` (a script expression) is true, up to [`TIMEOUT`].
    pub fn wait_until(&mut self, what: &str, condition: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while self.eval(condition) != json!(true) {
            assert!(Instant::now() < deadline, "waited too long for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Press a key (`Tab`, `Enter`) as the keyboard does.
    pub fn press(&mut self, key: &str, code: i64) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}),
            );
        }
    }

    /// Emulate a viewport `width` px wide (a phone when `mobile`).
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// Emulate the system's colour scheme (`light` or `dark`).
    pub fn color_scheme(&mut self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// A WebP (quality 90) of the whole page, written to `path`.
    pub fn screenshot(&mut self, path: &std::path::Path) {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "webp", "quality": 90, "captureBeyondViewport": true}),
        );
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
