//! The built `nnc lsp` over stdio, with a minimal JSON-RPC client: a panic
//! inside a request (injected with `NNC_LSP_PANIC_ON`) is an error response
//! and a line on stderr, the server keeps serving, and `shutdown` + `exit`
//! end it with status 0.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn send(stdin: &mut impl Write, msg: Value) {
    let body = msg.to_string();
    write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write to the server");
    stdin.flush().expect("flush");
}

fn recv(out: &mut impl BufRead) -> Value {
    let mut len = 0;
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).expect("read header") > 0, "the server closed stdout");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            len = n.parse().expect("length");
        }
    }
    let mut body = vec![0; len];
    out.read_exact(&mut body).expect("read body");
    serde_json::from_slice(&body).expect("JSON body")
}

/// Read until the response with `id` (skipping notifications).
fn response(out: &mut impl BufRead, id: i64) -> Value {
    loop {
        let m = recv(out);
        if m["id"] == id {
            return m;
        }
    }
}

#[test]
fn lsp_stdio_survives_a_panicking_request_and_exits_cleanly() {
    let cache = std::env::temp_dir().join(format!("nnc-lsp-stdio-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .arg("lsp")
        .env("NNC_LSP_PANIC_ON", "textDocument/hover")
        .env("XDG_CACHE_HOME", &cache)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nnc lsp");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let uri = "file:///tmp/nnc-stdio/m.nn";
    send(
        &mut stdin,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "capabilities": {} } }),
    );
    assert!(response(&mut out, 1)["result"]["capabilities"]["definitionProvider"]
        .as_bool()
        .unwrap_or(false));
    send(&mut stdin, json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }));
    send(
        &mut stdin,
        json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen", "params": { "textDocument": {
            "uri": uri, "languageId": "nn", "version": 1, "text": "fn f(x) = relu(x)\n" } } }),
    );
    let at = json!({ "textDocument": { "uri": uri }, "position": { "line": 0, "character": 11 } });
    send(
        &mut stdin,
        json!({ "jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": at }),
    );
    let hover = response(&mut out, 2);
    assert_eq!(hover["error"]["code"], -32603, "{hover}");
    assert!(hover["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("internal error in textDocument/hover"));
    // Still serving.
    send(
        &mut stdin,
        json!({ "jsonrpc": "2.0", "id": 3, "method": "textDocument/definition", "params": at }),
    );
    let def = response(&mut out, 3);
    assert!(def["result"]["uri"].as_str().unwrap_or("").ends_with("activations.nn"), "{def}");
    send(
        &mut stdin,
        json!({ "jsonrpc": "2.0", "id": 4, "method": "shutdown", "params": null }),
    );
    assert_eq!(response(&mut out, 4)["result"], Value::Null);
    send(&mut stdin, json!({ "jsonrpc": "2.0", "method": "exit", "params": null }));
    drop(stdin);
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let _ = std::fs::remove_dir_all(&cache);
    assert!(status.success(), "exit status {status:?}; stderr:\n{stderr}");
    assert!(
        stderr.contains("nnc lsp: internal error in textDocument/hover"),
        "the panic is logged: {stderr}"
    );
}
