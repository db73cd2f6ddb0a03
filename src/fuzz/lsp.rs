//! The `lsp` target: an editing session against the language server, run
//! in process over an in-memory connection. A session opens a corpus file,
//! then edits it (incremental range edits at random places, UTF-16
//! positions past the ends and inside characters included) and sends
//! requests at random positions. Every request must be answered within the
//! time limit, without an internal error; no notification may panic; after
//! `shutdown` requests get an error and `exit` ends the server.
//!
//! A session is a script of JSON lines (the reproducer format).

use super::rng::Rng;
use super::runner::{self, Target};
use super::sources::corpus;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Lsp;

/// Edits applied by all sessions so far (the campaign's second count).
pub static EDITS: AtomicU64 = AtomicU64::new(0);

/// Time a single request may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

const URI: &str = "file:///tmp/nnc-fuzz/session.nn";

const REQUESTS: &[&str] = &[
    "textDocument/hover",
    "textDocument/definition",
    "textDocument/completion",
    "textDocument/signatureHelp",
    "textDocument/inlayHint",
    "textDocument/codeAction",
    "textDocument/formatting",
    "textDocument/semanticTokens/full",
    "textDocument/documentSymbol",
];

const INSERTS: &[&str] = &[
    "",
    "",
    "(",
    ")",
    "|>",
    " |> relu",
    "Dense(",
    "Dense(4 -> 4)",
    "\n",
    ",",
    "x",
    "[",
    "]",
    "é",
    "\u{1F600}",
    "fn f(x) = f(x)\n",
    "model M(x: [batch, 4]) = x |> Dense(4 -> 2)\n",
    "//",
    "\"",
    "1e39",
    "9223372036854775807",
    "->",
    ": [",
    "let ",
];

impl Target for Lsp {
    fn name(&self) -> &'static str {
        "lsp"
    }
    fn extension(&self, _: &[u8]) -> &'static str {
        "lsp"
    }
    fn generate(&self, rng: &mut Rng, _index: u64) -> Vec<u8> {
        let corpus = corpus();
        let mut lines = vec![json!({ "open": rng.pick(corpus) })];
        let ops = rng.range(5, 40);
        for _ in 0..ops {
            let op = match rng.below(20) {
                0..=10 => {
                    let edits: Vec<Value> = (0..rng.range(1, 3))
                        .map(|_| {
                            let (l0, c0) = (rng.below(60), rng.below(90));
                            let (l1, c1) = if rng.one_in(2) {
                                (l0, c0)
                            } else {
                                (l0 + rng.below(3), rng.below(90))
                            };
                            let text = if rng.one_in(5) {
                                let other = rng.pick(corpus);
                                let a = rng.below(other.len().max(1));
                                other.get(a..(a + rng.below(200)).min(other.len())).unwrap_or("").to_string()
                            } else {
                                rng.pick(INSERTS).to_string()
                            };
                            json!([l0, c0, l1, c1, text])
                        })
                        .collect();
                    json!({ "change": edits })
                }
                11..=18 => json!({ "req": rng.pick(REQUESTS), "line": rng.below(60), "col": rng.below(90) }),
                _ => match rng.below(3) {
                    0 => json!({ "full": rng.pick(corpus) }),
                    1 => json!({ "close": true }),
                    _ => json!({ "open": rng.pick(corpus) }),
                },
            };
            lines.push(op);
        }
        if rng.one_in(10) {
            lines.push(json!({ "shutdown": true }));
            lines.push(json!({ "req": rng.pick(REQUESTS), "line": 0, "col": 0 }));
        }
        let mut out = String::new();
        for l in lines {
            out.push_str(&l.to_string());
            out.push('\n');
        }
        out.into_bytes()
    }
    fn check(&self, input: &[u8]) {
        run_session(input);
    }
}

struct Session {
    conn: Connection,
    next: i32,
    version: i32,
    shut_down: bool,
}

impl Session {
    fn notify(&self, method: &str, params: Value) {
        let _ = self
            .conn
            .sender
            .send(Message::Notification(Notification::new(method.into(), params)));
    }

    /// Send a request and wait for its answer; panics if none comes in
    /// time or the server reports an internal error.
    fn request(&mut self, method: &str, params: Value) -> Option<Value> {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.conn
            .sender
            .send(Message::Request(Request::new(id.clone(), method.into(), params)))
            .expect("the server is gone");
        let until = Instant::now() + ANSWER_WITHIN;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.conn.receiver.recv_timeout(left) {
                Ok(Message::Response(r)) if r.id == id => {
                    if let Some(e) = &r.error {
                        assert!(e.code != ErrorCode::InternalError as i32, "{method}: internal error: {}", e.message);
                        assert!(
                            !self.shut_down || e.code == ErrorCode::InvalidRequest as i32,
                            "{method} after shutdown: {e:?}"
                        );
                        return None;
                    }
                    assert!(!self.shut_down, "{method} after shutdown was answered as if running");
                    return r.result;
                }
                Ok(_) => {}
                Err(_) => panic!("{method}: no answer within {} s", ANSWER_WITHIN.as_secs()),
            }
        }
    }

    fn doc(&self) -> Value {
        json!({ "uri": URI })
    }
}

fn position(op: &Value) -> Value {
    json!({ "line": op["line"].as_u64().unwrap_or(0), "character": op["col"].as_u64().unwrap_or(0) })
}

/// Run one session script.
pub fn run_session(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let (server, conn) = Connection::memory();
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    let thread = format!("{}-lsp-{}", runner::THREAD_PREFIX, SESSIONS.fetch_add(1, Ordering::Relaxed));
    let handle = std::thread::Builder::new()
        .name(thread.clone())
        .stack_size(crate::lsp::STACK_SIZE)
        .spawn(move || crate::lsp::serve(server).map_err(|e| e.to_string()))
        .expect("spawn the server");
    let mut s = Session {
        conn,
        next: 0,
        version: 0,
        shut_down: false,
    };
    s.request("initialize", json!({ "capabilities": {} }));
    s.notify("initialized", json!({}));
    for line in text.lines() {
        // A line that is not an operation (a minimised script) is skipped.
        let Ok(op) = serde_json::from_str::<Value>(line) else { continue };
        s.version += 1;
        if let Some(t) = op["open"].as_str() {
            s.notify(
                "textDocument/didOpen",
                json!({ "textDocument": { "uri": URI, "languageId": "nn", "version": s.version, "text": t } }),
            );
        } else if let Some(t) = op["full"].as_str() {
            s.notify(
                "textDocument/didChange",
                json!({ "textDocument": { "uri": URI, "version": s.version }, "contentChanges": [{ "text": t }] }),
            );
            EDITS.fetch_add(1, Ordering::Relaxed);
        } else if let Some(edits) = op["change"].as_array() {
            let changes: Vec<Value> = edits
                .iter()
                .map(|e| {
                    let n = |i: usize| e[i].as_u64().unwrap_or(0);
                    json!({
                        "range": { "start": { "line": n(0), "character": n(1) }, "end": { "line": n(2), "character": n(3) } },
                        "text": e[4].as_str().unwrap_or(""),
                    })
                })
                .collect();
            EDITS.fetch_add(changes.len() as u64, Ordering::Relaxed);
            s.notify(
                "textDocument/didChange",
                json!({ "textDocument": { "uri": URI, "version": s.version }, "contentChanges": changes }),
            );
        } else if op["close"].as_bool() == Some(true) {
            s.notify("textDocument/didClose", json!({ "textDocument": s.doc() }));
        } else if op["shutdown"].as_bool() == Some(true) {
            s.request("shutdown", Value::Null);
            s.shut_down = true;
        } else if let Some(method) = op["req"].as_str() {
            let pos = position(&op);
            let params = match method {
                "textDocument/inlayHint" => {
                    json!({ "textDocument": s.doc(), "range": { "start": { "line": 0, "character": 0 }, "end": pos } })
                }
                "textDocument/codeAction" => json!({
                    "textDocument": s.doc(),
                    "range": { "start": pos, "end": pos },
                    "context": { "diagnostics": [] },
                }),
                "textDocument/formatting" => json!({ "textDocument": s.doc(), "options": { "tabSize": 4, "insertSpaces": true } }),
                "textDocument/semanticTokens/full" | "textDocument/documentSymbol" => json!({ "textDocument": s.doc() }),
                _ => json!({ "textDocument": s.doc(), "position": pos }),
            };
            s.request(method, params);
        }
    }
    if !s.shut_down {
        s.request("shutdown", Value::Null);
    }
    s.notify("exit", Value::Null);
    let until = Instant::now() + ANSWER_WITHIN;
    while !handle.is_finished() {
        assert!(Instant::now() < until, "the server did not exit after `exit`");
        std::thread::sleep(Duration::from_millis(1));
    }
    let result = handle.join();
    let panics = runner::take_panics_of(&thread);
    assert!(panics.is_empty(), "the server panicked: {}", panics.join("; "));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("the server loop failed: {e}"),
        Err(_) => panic!("the server thread died"),
    }
}
