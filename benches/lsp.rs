//! How long `nnc lsp` takes to publish diagnostics for a 300-line file after
//! an edit: the server runs in-process on an in-memory connection, and each
//! round is one `didChange` (alternately adding and removing a shape error)
//! until its `publishDiagnostics` arrives. `driver::compile` alone is timed
//! too. The target is 20 ms; the run fails (exit 1) when the 95th
//! percentile is above it.
//!
//!     cargo bench --bench lsp

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::json;
use std::time::{Duration, Instant};

/// A realistic file of `lines` lines: documented helper functions, layers,
/// models with `let` chains and pipelines, and a train block.
fn source(lines: usize) -> String {
    let mut s = String::from("// Generated for the language-server benchmark.\n\n");
    let mut i = 0;
    while s.lines().count() + 6 < lines {
        s.push_str(&format!(
            "/// Scaled activation number {i}.\nfn act{i}(x) = relu(x) * {}.5\n\n/// A residual block.\nlayer Block{i}(n: int) {{\n    param W: [n, n] = glorot_uniform()\n    param b: [n] = zeros()\n    fn forward(x: [..., n]) = x + act{i}(x @ W + b)\n}}\n\n",
            i % 3
        ));
        s.push_str(&format!(
            "model Net{i}(x: [batch, 64]) -> [batch, 10] {{\n    let h = x |> Dense(64 -> 32, relu)\n    let r = h |> Block{i}(32)\n              |> Block{i}(32)\n    let p = r |> Dense(32 -> 16, act{i})\n    return p |> Dense(16 -> 10)\n}}\n\n"
        ));
        i += 1;
    }
    let row = |n: usize| format!("[[{}]]", vec!["0"; n].join(", "));
    s.push_str(&format!(
        "train Net0 {{\n    data = tensors(x: {}, y: {})\n    loss = mse(model(x), y)\n    optimizer = adam(lr: 0.01)\n    epochs = 1\n}}\n",
        row(64),
        row(10)
    ));
    s
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 95 / 100], v[v.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let good = source(300);
    let bad = good.replace("h |> Block0(32)", "h |> Block0(31)");
    let n_lines = good.lines().count();
    let c = nnc::driver::compile("bench.nn", &good);
    let errors: Vec<_> = c.diagnostics().iter().map(|d| format!("{} {}", d.code, d.message)).collect();
    let wrong = nnc::driver::compile("bench.nn", &bad).diagnostics().len();
    println!(
        "file: {n_lines} lines, {} bytes; diagnostics: {} clean, {wrong} after the edit",
        good.len(),
        errors.len()
    );
    assert!(errors.is_empty() && wrong > 0, "the benchmark file must check clean: {errors:?}");

    let rounds = 200;
    let mut compile = vec![];
    for k in 0..rounds {
        let t = Instant::now();
        let c = nnc::driver::compile("bench.nn", if k % 2 == 0 { &good } else { &bad });
        std::hint::black_box(c.diagnostics().len());
        compile.push(t.elapsed());
    }

    let (server, client) = Connection::memory();
    let thread = std::thread::spawn(move || nnc::lsp::serve(server).expect("server"));
    let send = |m: Message| client.sender.send(m).expect("send");
    send(Message::Request(Request::new(
        RequestId::from(1),
        "initialize".into(),
        json!({ "capabilities": {} }),
    )));
    let _ = client.receiver.recv().expect("initialize response");
    send(Message::Notification(Notification::new("initialized".into(), json!({}))));
    let uri = "file:///bench/model.nn";
    let wait_diags = || loop {
        if let Message::Notification(n) = client.receiver.recv().expect("message") {
            if n.method == "textDocument/publishDiagnostics" {
                return n.params["diagnostics"].as_array().map_or(0, Vec::len);
            }
        }
    };
    send(Message::Notification(Notification::new(
        "textDocument/didOpen".into(),
        json!({ "textDocument": { "uri": uri, "languageId": "nn", "version": 1, "text": good } }),
    )));
    wait_diags();
    let mut server_times = vec![];
    for k in 0..rounds {
        let text = if k % 2 == 0 { &bad } else { &good };
        let t = Instant::now();
        send(Message::Notification(Notification::new(
            "textDocument/didChange".into(),
            json!({ "textDocument": { "uri": uri, "version": k + 2 }, "contentChanges": [{ "text": text }] }),
        )));
        let n = wait_diags();
        server_times.push(t.elapsed());
        assert_eq!(n > 0, k % 2 == 0, "round {k}: the edit's diagnostics");
    }
    // Requests an editor sends after each change, on the same file.
    let requests = [
        (
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 60, "character": 14 } }),
        ),
        (
            "textDocument/inlayHint",
            json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 400, "character": 0 } } }),
        ),
        ("textDocument/semanticTokens/full", json!({ "textDocument": { "uri": uri } })),
        (
            "textDocument/completion",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 61, "character": 20 } }),
        ),
    ];
    let mut request_times = vec![];
    for (i, (method, params)) in requests.iter().enumerate() {
        let mut times = vec![];
        for k in 0..50 {
            let id = RequestId::from(100 + (i * 50 + k) as i32);
            let t = Instant::now();
            send(Message::Request(Request::new(id.clone(), method.to_string(), params.clone())));
            loop {
                if let Message::Response(r) = client.receiver.recv().expect("message") {
                    assert!(r.error.is_none() && r.id == id, "{method}: {r:?}");
                    break;
                }
            }
            times.push(t.elapsed());
        }
        request_times.push((method, times));
    }
    send(Message::Request(Request::new(RequestId::from(2), "shutdown".into(), json!(null))));
    let _ = client.receiver.recv();
    send(Message::Notification(Notification::new("exit".into(), json!(null))));
    thread.join().expect("server exits");

    let (m, p95, max) = percentiles(compile);
    println!("driver::compile               median {}  p95 {}  max {}", ms(m), ms(p95), ms(max));
    let (m, p95, max) = percentiles(server_times);
    println!(
        "didChange -> publishDiagnostics median {}  p95 {}  max {}  ({rounds} edits)",
        ms(m),
        ms(p95),
        ms(max)
    );
    for (method, times) in request_times {
        let (m, p95, max) = percentiles(times);
        println!("{method:<33} median {}  p95 {}  max {}", ms(m), ms(p95), ms(max));
    }
    if p95 > Duration::from_millis(20) {
        println!("FAIL: p95 above the 20 ms target");
        std::process::exit(1);
    }
    println!("ok: within the 20 ms target");
}
