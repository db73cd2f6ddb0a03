//! The language server driven in-process over an in-memory connection, the
//! way an editor drives it: initialize, open, change, request. The
//! real-client test (pytest-lsp against the built binary) is `lsp_e2e`.

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use nnc::lsp::convert::LineIndex;
use serde_json::{json, Value};
use std::time::Duration;

const URI: &str = "file:///tmp/nnc-lsp-test/model.nn";

/// The seeds' MNIST network with a wrong layer size in the middle.
const BROKEN: &str = "model Mlp(x: [batch, 28, 28]) -> [batch, 10] =
    x |> flatten
      |> Dense(784 -> 128, relu)
      |> Dense(100 -> 64, relu)
      |> Dense(64 -> 10)
";

pub struct Client {
    conn: Connection,
    server: Option<std::thread::JoinHandle<()>>,
    next_id: i32,
    /// Notifications received while waiting for responses.
    pending: Vec<Notification>,
}

impl Client {
    pub fn start() -> Client {
        let (server, conn) = Connection::memory();
        let handle = std::thread::Builder::new()
            .stack_size(nnc::lsp::STACK_SIZE)
            .spawn(move || nnc::lsp::serve(server).expect("server loop"))
            .expect("spawn the server");
        let mut c = Client {
            conn,
            server: Some(handle),
            next_id: 0,
            pending: vec![],
        };
        let caps = c.request("initialize", json!({ "capabilities": {} }));
        assert!(caps["capabilities"]["hoverProvider"].as_bool().unwrap_or(false), "{caps}");
        c.notify("initialized", json!({}));
        c
    }

    fn recv(&self) -> Message {
        self.conn
            .receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("server answers within 20 s")
    }

    /// Send a request and wait for its response (error responses too).
    pub fn request_raw(&mut self, method: &str, params: Value) -> Response {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.conn
            .sender
            .send(Message::Request(Request::new(id.clone(), method.into(), params)))
            .expect("send");
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => return r,
                Message::Notification(n) => self.pending.push(n),
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let r = self.request_raw(method, params);
        assert!(r.error.is_none(), "{method} failed: {:?}", r.error);
        r.result.unwrap_or(Value::Null)
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.conn
            .sender
            .send(Message::Notification(Notification::new(method.into(), params)))
            .expect("send");
    }

    /// The next diagnostics published for the test document.
    pub fn diagnostics(&mut self) -> Vec<Value> {
        loop {
            let n = if self.pending.is_empty() {
                match self.recv() {
                    Message::Notification(n) => n,
                    other => panic!("unexpected message {other:?}"),
                }
            } else {
                self.pending.remove(0)
            };
            if n.method == "textDocument/publishDiagnostics" {
                return n.params["diagnostics"].as_array().expect("array").clone();
            }
        }
    }

    pub fn open(&mut self, text: &str) -> Vec<Value> {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": URI, "languageId": "nn", "version": 1, "text": text } }),
        );
        self.diagnostics()
    }

    pub fn change(&mut self, version: i32, text: &str) -> Vec<Value> {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": URI, "version": version }, "contentChanges": [{ "text": text }] }),
        );
        self.diagnostics()
    }

    pub fn at(&mut self, method: &str, text: &str, needle: &str, delta: usize) -> Value {
        let pos = position(text, needle, delta);
        self.request(method, json!({ "textDocument": { "uri": URI }, "position": pos }))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let _ = self.request_raw("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        if let Some(h) = self.server.take() {
            h.join().expect("server thread exits cleanly");
        }
    }
}

/// The LSP position `delta` bytes into the first occurrence of `needle`.
pub fn position(text: &str, needle: &str, delta: usize) -> Value {
    let off = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in text")) + delta;
    let p = LineIndex::new(text).position(text, off);
    json!({ "line": p.line, "character": p.character })
}

fn range_of(text: &str, start: usize, end: usize) -> Value {
    let idx = LineIndex::new(text);
    serde_json::to_value(idx.range(text, start, end)).expect("json")
}

#[test]
fn lsp_diagnostics_match_the_cli_and_clear_when_fixed() {
    let mut c = Client::start();
    let diags = c.open(BROKEN);
    let cli = nnc::driver::compile("model.nn", BROKEN);
    assert_eq!(diags.len(), cli.diagnostics().len(), "{diags:#?}");
    let (d, want) = (&diags[0], &cli.diagnostics()[0]);
    assert_eq!(d["code"], "E0301");
    assert_eq!(d["severity"], 1);
    assert_eq!(
        d["range"],
        range_of(BROKEN, want.primary.span.start as usize, want.primary.span.end as usize)
    );
    assert_eq!(&BROKEN[want.primary.span.range()], "Dense(100 -> 64, relu)");
    let message = d["message"].as_str().expect("message");
    assert!(message.starts_with(&want.message), "{message}");
    assert!(
        message.contains("help: ") && message.contains("Dense(128 -> 64, relu)"),
        "{message}"
    );
    let related = d["relatedInformation"].as_array().expect("secondary labels as related information");
    assert_eq!(related.len(), want.secondary.len());
    assert_eq!(related[0]["location"]["uri"], URI);
    assert_eq!(related[0]["message"], want.secondary[0].message.as_str());

    let fixed = BROKEN.replace("Dense(100 -> 64", "Dense(128 -> 64");
    assert_eq!(c.change(2, &fixed), Vec::<Value>::new());
}

#[test]
fn lsp_hover_shows_shapes_signatures_and_docs() {
    let text =
        "/// Two layers.\nmodel M(x: [batch, 4]) -> [batch, 2] {\n    let h = x |> Dense(4 -> 8, relu)\n    return h |> Dense(8 -> 2)\n}\n";
    let mut c = Client::start();
    assert_eq!(c.open(text), Vec::<Value>::new());
    let on_let = c.at("textDocument/hover", text, "h =", 0);
    let v = on_let["contents"]["value"].as_str().expect("markdown");
    assert!(v.contains("h : [batch, 8]"), "{v}");
    let on_dense = c.at("textDocument/hover", text, "Dense(8", 1);
    let v = on_dense["contents"]["value"].as_str().expect("markdown");
    assert!(
        v.contains("layer Dense(inputs: int, outputs: int, activation: fn = identity)"),
        "{v}"
    );
    assert!(v.contains("A fully connected layer"), "doc comment: {v}");
    assert!(v.contains("[batch, 2]"), "stage type: {v}");
    let on_relu = c.at("textDocument/hover", text, "relu", 2);
    let v = on_relu["contents"]["value"].as_str().expect("markdown");
    assert!(v.contains("fn relu(x)") && v.contains("max(x, 0)"), "{v}");
    assert_eq!(
        c.at("textDocument/hover", text, "/// Two", 4),
        Value::Null,
        "nothing to say in a comment"
    );
    let on_input = c.at("textDocument/hover", text, "x: [batch, 4]", 0);
    assert!(
        on_input["contents"]["value"].as_str().unwrap_or("").contains("x: [batch, 4]"),
        "{on_input}"
    );

    // A function checked alone has unknown shapes; once a model uses it,
    // hover shows only the concrete ones.
    let text = "fn f(x) = x + 1\nmodel M(x: [batch, 4]) -> [batch, 4] = f(x)\n";
    c.change(2, text);
    let v = c.at("textDocument/hover", text, "+ 1", 2)["contents"]["value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(v.contains("x + 1 : [batch, 4]\n"), "{v}");

    // A keyword argument's name: the parameter it sets.
    let text = "model M(x: [batch, 4]) -> [batch, 8] = x |> Dense(4 -> 8, activation: relu)\n";
    c.change(3, text);
    let v = c.at("textDocument/hover", text, "activation", 3)["contents"]["value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(v.contains("Dense: activation: fn = identity"), "{v}");
}

#[test]
fn lsp_definition_finds_locals_the_file_and_the_stdlib() {
    let text = "fn twice(x) = x * 2\nmodel M(x: [batch, 4]) -> [batch, 2] {\n    let h = twice(x) |> Dense(4 -> 2)\n    return h\n}\n";
    let mut c = Client::start();
    c.open(text);
    let local = c.at("textDocument/definition", text, "return h", 7);
    assert_eq!(local["uri"], URI);
    assert_eq!(
        local["range"],
        range_of(text, text.find("h =").expect("let"), text.find("h =").expect("let") + 1)
    );
    let file = c.at("textDocument/definition", text, "twice(x) |>", 0);
    assert_eq!(file["range"], range_of(text, 3, 8));
    let train = format!("{text}train M {{\n    loss = mse(model(x), y)\n}}\n");
    c.change(2, &train);
    let model = c.at("textDocument/definition", &train, "model(x)", 1);
    assert_eq!(
        model["range"],
        range_of(&train, train.find("M(").expect("M"), train.find("M(").expect("M") + 1)
    );
    let std = c.at("textDocument/definition", text, "Dense", 0);
    let uri = std["uri"].as_str().expect("uri");
    assert!(uri.starts_with("file://") && uri.ends_with("/layers.nn"), "{uri}");
    // The location points at `Dense` in a file an editor can open.
    let path = lsp_types::Url::parse(uri).expect("url").to_file_path().expect("path");
    let on_disk = std::fs::read_to_string(&path).expect("stdlib file on disk");
    let start = LineIndex::new(&on_disk).offset(&on_disk, serde_json::from_value(std["range"]["start"].clone()).expect("pos"));
    assert_eq!(&on_disk[start..start + 5], "Dense");
}

#[test]
fn lsp_keeps_the_last_good_analysis_while_text_does_not_parse() {
    let good = "model M(x: [batch, 4]) -> [batch, 2] {\n    let h = x |> Dense(4 -> 2)\n    return h\n}\n";
    let mut c = Client::start();
    c.open(good);
    let broken = good.replace("return h", "return (h");
    let diags = c.change(2, &broken);
    assert!(diags.iter().any(|d| d["code"] == "E0001"), "{diags:?}");
    let hover = c.at("textDocument/hover", &broken, "h =", 0);
    assert!(hover["contents"]["value"].as_str().unwrap_or("").contains("[batch, 2]"), "{hover}");
    let def = c.at("textDocument/definition", &broken, "Dense", 0);
    assert!(def["uri"].as_str().unwrap_or("").ends_with("layers.nn"), "{def}");
    let hints = c.request(
        "textDocument/inlayHint",
        json!({ "textDocument": { "uri": URI }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 9, "character": 0 } } }),
    );
    assert!(!hints.as_array().expect("hints").is_empty());
    // Formatting refuses broken text rather than guessing.
    let edits = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": URI }, "options": { "tabSize": 4, "insertSpaces": true } }),
    );
    assert_eq!(edits, json!([]));
}

#[test]
fn lsp_completes_names_with_signatures_and_keyword_arguments() {
    let text = "model M(x: [batch, 4]) -> [batch, 2] =\n    x |> Dense(4 -> 2, )\n";
    let mut c = Client::start();
    c.open(text);
    let items = c.at("textDocument/completion", text, ", )", 2);
    let items = items.as_array().expect("items");
    let label = |i: &Value| i["label"].as_str().unwrap_or("").to_string();
    let inputs = items.iter().find(|i| label(i) == "activation:").expect("keyword argument of Dense");
    assert_eq!(inputs["insertText"], "activation: ");
    let relu = items.iter().find(|i| label(i) == "relu").expect("relu");
    assert_eq!(relu["detail"], "fn relu(x)");
    let sum = items.iter().find(|i| label(i) == "sum").expect("primitive sum");
    assert!(sum["detail"].as_str().unwrap_or("").contains("axis"), "{sum}");
    assert!(items.iter().any(|i| label(i) == "M"), "the file's own model");
    // Outside a call there are no keyword arguments.
    let top = c.at("textDocument/completion", text, "model", 0);
    assert!(!top.as_array().expect("items").iter().any(|i| label(i).ends_with(':')));
}

/// Inside a call's parentheses: the callee's signature, the argument being
/// typed highlighted by position (`,` and `->` separate), by keyword, or
/// shifted by one for a function in a pipeline; nothing outside a call.
#[test]
fn lsp_signature_help_follows_the_argument_being_typed() {
    let text = "model M(x: [batch, 4]) -> [batch, 2] =\n    x |> Dense(4 -> 2, relu) |> leaky_relu(slope: 0.2)\n\n\
                fn f(p, q) = where(p > 0, p, q)\n";
    let mut c = Client::start();
    c.open(text);
    let help = |c: &mut Client, needle: &str, delta: usize| c.at("textDocument/signatureHelp", text, needle, delta);
    let h = help(&mut c, "4 -> 2", 1);
    assert_eq!(
        h["signatures"][0]["label"], "layer Dense(inputs: int, outputs: int, activation: fn = identity)",
        "{h}"
    );
    assert_eq!(h["activeParameter"], 0, "{h}");
    assert_eq!(h["signatures"][0]["parameters"][1]["label"], "outputs: int");
    assert_eq!(help(&mut c, "2, relu", 1)["activeParameter"], 1);
    assert_eq!(help(&mut c, "relu)", 2)["activeParameter"], 2);
    // `x |> leaky_relu(|`: the pipeline supplies `x`, so the first typed
    // argument is `slope`.
    assert_eq!(help(&mut c, "leaky_relu(", 11)["activeParameter"], 1);
    // `x |> leaky_relu(slope: ...)`: by keyword.
    let h = help(&mut c, "0.2)", 1);
    assert!(
        h["signatures"][0]["label"].as_str().unwrap().starts_with("fn leaky_relu(x, slope"),
        "{h}"
    );
    assert_eq!(h["activeParameter"], 1, "{h}");
    // A primitive, positionally: where(p > 0, p, |q).
    let h = help(&mut c, "q)\n", 0);
    assert!(h["signatures"][0]["label"].as_str().unwrap().starts_with("fn where("), "{h}");
    assert_eq!(h["activeParameter"], 2, "{h}");
    // Declaring parameters is not a call; nor is the top level.
    assert_eq!(help(&mut c, "p, q) =", 0), Value::Null);
    assert_eq!(help(&mut c, "model", 0), Value::Null);
}

/// Incremental sync: range edits, several per notification, each against
/// the text the previous one left; positions count UTF-16 units.
#[test]
fn lsp_applies_incremental_edits_in_order() {
    let text = "// sizes: 784 → 128 → 64 🙂\nmodel M(x: [batch, 28, 28]) -> [batch, 10] =\n    x |> flatten\n      |> Dense(784 -> 128, relu)\n      |> Dense(100 -> 64, relu)\n      |> Dense(64 -> 10)\n";
    let mut c = Client::start();
    assert_eq!(c.open(text).len(), 1, "the wrong size");
    let edit = |line: u32, from: u32, to: u32, new: &str| json!({ "range": { "start": { "line": line, "character": from }, "end": { "line": line, "character": to } }, "text": new });
    let change = |c: &mut Client, version: i32, edits: Vec<Value>| {
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": URI, "version": version }, "contentChanges": edits }),
        );
        c.diagnostics()
    };
    // `100` -> `128` on line 4: fixed.
    assert_eq!(change(&mut c, 2, vec![edit(4, 15, 18, "128")]), Vec::<Value>::new());
    // Several edits in one notification: a line inserted at the top; the
    // size, now on line 5, broken again; text inserted before the emoji
    // (after two multi-byte arrows, each one UTF-16 unit); a stray space
    // inside `Dense(`.
    let edits = vec![
        edit(0, 0, 0, "// first\n"),
        edit(5, 15, 18, "99"),
        edit(1, 25, 25, "ok "),
        edit(4, 15, 15, " "),
    ];
    let diags = change(&mut c, 3, edits);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "E0301");
    assert_eq!(diags[0]["range"]["start"]["line"], 5, "{diags:?}");
    // Formatting returns the whole text the server holds, respaced.
    let edits = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": URI }, "options": { "tabSize": 4, "insertSpaces": true } }),
    );
    let want = "// first\n// sizes: 784 → 128 → 64 ok 🙂\nmodel M(x: [batch, 28, 28]) -> [batch, 10] =\n    x |> flatten\n      |> Dense(784 -> 128, relu)\n      |> Dense(99 -> 64, relu)\n      |> Dense(64 -> 10)\n";
    assert_eq!(edits[0]["newText"], want, "{edits}");
}

#[test]
fn lsp_inlay_hints_show_let_and_pipeline_shapes() {
    let text = "model Digits(x: [batch, 64]) -> [batch, 10] {\n    let h = x |> Dense(64 -> 32, relu)\n    return h\n      |> Dense(32 -> 10)\n}\n".to_string();
    let mut c = Client::start();
    assert_eq!(c.open(&text), Vec::<Value>::new(), "{text}");
    let hints = c.request(
        "textDocument/inlayHint",
        json!({ "textDocument": { "uri": URI }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 99, "character": 0 } } }),
    );
    let labels: Vec<String> = hints
        .as_array()
        .expect("hints")
        .iter()
        .map(|h| h["label"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(labels, [": [batch, 32]", " [batch, 32]", " [batch, 10]"]);
    let h = &hints.as_array().expect("hints")[0];
    assert_eq!(h["position"], position(&text, "h =", 1));
}

#[test]
fn lsp_symbols_semantic_tokens_and_formatting() {
    let text = "/// doc\nlayer L(n: int) {\n  param W:[n, n]=zeros()\n  fn forward(x) = relu(x @ W)\n}\nmodel M(x: [b, 3]) -> [b, 3] = x |> L(3)\n";
    let mut c = Client::start();
    assert_eq!(c.open(text), Vec::<Value>::new());
    let syms = c.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": URI } }));
    let names: Vec<&str> = syms
        .as_array()
        .expect("symbols")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["L", "M"]);
    let members: Vec<&str> = syms[0]["children"]
        .as_array()
        .expect("members")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(members, ["W", "forward"]);

    let toks = c.request("textDocument/semanticTokens/full", json!({ "textDocument": { "uri": URI } }));
    let data: Vec<u64> = toks["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v.as_u64().unwrap_or(0))
        .collect();
    assert_eq!(data.len() % 5, 0);
    // Decode to (line, col, len, type) and look up a few tokens.
    let (mut line, mut col, mut decoded) = (0, 0, vec![]);
    for t in data.chunks(5) {
        if t[0] > 0 {
            col = 0;
        }
        line += t[0];
        col += t[1];
        decoded.push((line, col, t[2], t[3]));
    }
    let kind_at = |needle: &str, nth: usize| {
        let off = text.match_indices(needle).nth(nth).expect("needle").0;
        let p = LineIndex::new(text).position(text, off);
        decoded
            .iter()
            .find(|d| d.0 == p.line as u64 && d.1 == p.character as u64)
            .map(|d| (d.2, d.3))
    };
    let legend = nnc::lsp::capabilities().semantic_tokens_provider.expect("legend");
    let lsp_types::SemanticTokensServerCapabilities::SemanticTokensOptions(opts) = legend else {
        panic!("options")
    };
    let ty = |name: &str| opts.legend.token_types.iter().position(|t| t.as_str() == name).expect("type") as u64;
    assert_eq!(kind_at("/// doc", 0), Some((7, ty("comment"))));
    assert_eq!(kind_at("layer", 0), Some((5, ty("keyword"))));
    assert_eq!(kind_at("L(3)", 0), Some((1, ty("class"))));
    assert_eq!(kind_at("relu", 0), Some((4, ty("function"))));
    assert_eq!(kind_at("param", 0), Some((5, ty("keyword"))));
    assert_eq!(kind_at("3]", 0), Some((1, ty("number"))));

    let edits = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": URI }, "options": { "tabSize": 4, "insertSpaces": true } }),
    );
    let edits = edits.as_array().expect("edits");
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0]["newText"].as_str(), nnc::syntax::format::format(text).ok().as_deref());
    assert!(edits[0]["newText"]
        .as_str()
        .unwrap_or("")
        .contains("    param W: [n, n] = zeros()\n"));
}

/// A small deterministic generator, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn lsp_survives_random_edits_and_requests() {
    let mut texts = vec![];
    for dir in ["examples", "stdlib"] {
        for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "nn") {
                texts.push(std::fs::read_to_string(p).expect("read"));
            }
        }
    }
    let snippets = [
        "(", ")", "{", "}", "|>", "->", " ", "\n", "Dense(", "×", "let x = ", "[", "\"", "/*", "0.5", ":", "model", "fn",
    ];
    let methods = ["textDocument/hover", "textDocument/definition", "textDocument/completion"];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut c = Client::start();
    let mut text = texts[0].clone();
    c.open(&text);
    for version in 2..200 {
        // Mutate: delete a range, insert a snippet, or switch files.
        match rng.next(10) {
            0 => text = texts[rng.next(texts.len())].clone(),
            1..=4 if !text.is_empty() => {
                let a = rng.next(text.len());
                let b = (a + rng.next(20)).min(text.len());
                if text.is_char_boundary(a) && text.is_char_boundary(b) {
                    text.replace_range(a..b, "");
                }
            }
            _ => {
                let a = rng.next(text.len() + 1);
                if text.is_char_boundary(a) {
                    text.insert_str(a, snippets[rng.next(snippets.len())]);
                }
            }
        }
        let lines = text.split('\n').count() as u64;
        for d in c.change(version, &text) {
            let (start, end) = (&d["range"]["start"], &d["range"]["end"]);
            assert!(
                start["line"].as_u64() <= end["line"].as_u64() && end["line"].as_u64() < Some(lines),
                "{d} outside the text"
            );
        }
        let line = rng.next(text.lines().count() + 2);
        let character = rng.next(40);
        let pos = json!({ "line": line, "character": character });
        for m in methods {
            c.request(m, json!({ "textDocument": { "uri": URI }, "position": pos }));
        }
        let around = json!({ "start": { "line": line, "character": 0 }, "end": { "line": line + 3, "character": 0 } });
        c.request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": URI }, "range": around, "context": { "diagnostics": [] } }),
        );
        let whole = json!({ "start": { "line": 0, "character": 0 }, "end": { "line": 999, "character": 0 } });
        c.request("textDocument/inlayHint", json!({ "textDocument": { "uri": URI }, "range": whole }));
        c.request("textDocument/semanticTokens/full", json!({ "textDocument": { "uri": URI } }));
        c.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": URI } }));
        c.request(
            "textDocument/formatting",
            json!({ "textDocument": { "uri": URI }, "options": { "tabSize": 4, "insertSpaces": true } }),
        );
    }
    // Deeply nested expressions (generated code) must not overflow.
    for deep in [
        "fn f(x) = x".to_string() + &" + x".repeat(20_000),
        "fn f(x) = ".to_string() + &"-".repeat(20_000) + "x",
    ] {
        c.change(1000, &deep);
        c.at("textDocument/hover", &deep, "x", 0);
    }
    // Requests about unknown documents are errors, not crashes.
    let r = c.request_raw(
        "textDocument/hover",
        json!({ "textDocument": { "uri": "file:///nope.nn" }, "position": { "line": 0, "character": 0 } }),
    );
    assert!(r.error.is_some());
    let r = c.request_raw("textDocument/hover", json!({ "bogus": true }));
    assert!(r.error.is_some());
}

/// `lsp` builds on the driver and the data types of the stages below it;
/// nothing but the command line uses `lsp`.
#[test]
fn lsp_module_dependencies() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let allowed = ["lsp", "base", "diag", "driver", "sema", "syntax"];
    let mut violations = vec![];
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&f).expect("read");
        for (i, line) in text.lines().enumerate() {
            for (pos, _) in line.match_indices("crate::") {
                let name: String = line[pos + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if rel.starts_with("lsp/") && !allowed.contains(&name.as_str()) {
                    violations.push(format!("{rel}:{}: lsp uses `{name}`", i + 1));
                }
                // The fuzzer drives the server in process, like the tests.
                if name == "lsp" && !rel.starts_with("lsp/") && !rel.starts_with("cli/") && !rel.starts_with("fuzz/") {
                    violations.push(format!("{rel}:{}: uses `lsp`", i + 1));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn lsp_use_loads_modules_beside_the_file() {
    let dir = std::env::temp_dir().join(format!("nnc-lsp-use-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(dir.join("helpers.nn"), "/// Twice the input.\nfn double(x) = x * 2\n").expect("write");
    let uri = lsp_types::Url::from_file_path(dir.join("model.nn")).expect("uri").to_string();
    let text = "use helpers\nmodel M(x: [batch, 4]) -> [batch, 4] = double(x)\n";
    let mut c = Client::start();
    c.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "nn", "version": 1, "text": text } }),
    );
    assert_eq!(c.diagnostics(), Vec::<Value>::new(), "`use helpers` finds helpers.nn");
    let def = c.request(
        "textDocument/definition",
        json!({ "textDocument": { "uri": uri }, "position": position(text, "double", 1) }),
    );
    assert!(def["uri"].as_str().unwrap_or("").ends_with("/helpers.nn"), "{def}");
    assert_eq!(def["range"]["start"], json!({ "line": 1, "character": 3 }));
    let hover = c.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": position(text, "double", 1) }),
    );
    assert!(
        hover["contents"]["value"].as_str().unwrap_or("").contains("Twice the input."),
        "{hover}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lsp_quick_fixes_apply_the_help_when_it_checks() {
    let mut c = Client::start();
    c.open(BROKEN);
    let line = |text: &str, needle: &str| position(text, needle, 0)["line"].clone();
    let range = json!({ "start": { "line": line(BROKEN, "Dense(100"), "character": 0 }, "end": { "line": line(BROKEN, "Dense(100"), "character": 40 } });
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": URI }, "range": range, "context": { "diagnostics": [] } }),
    );
    let actions = actions.as_array().expect("actions");
    assert_eq!(actions.len(), 1, "{actions:#?}");
    assert_eq!(actions[0]["kind"], "quickfix");
    assert_eq!(actions[0]["diagnostics"][0]["code"], "E0301");
    let edit = &actions[0]["edit"]["changes"][URI][0];
    assert_eq!(edit["newText"], "Dense(128 -> 64, relu)");
    let start = BROKEN.find("Dense(100").expect("bad layer");
    assert_eq!(edit["range"], range_of(BROKEN, start, start + "Dense(100 -> 64, relu)".len()));

    // A misspelt activation: "did you mean `relu`?" becomes an edit.
    let typo = BROKEN.replace("Dense(100 -> 64, relu)", "Dense(128 -> 64, rleu)");
    c.change(2, &typo);
    let range = json!({ "start": position(&typo, "rleu", 0), "end": position(&typo, "rleu", 4) });
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": URI }, "range": range, "context": { "diagnostics": [] } }),
    );
    assert_eq!(actions[0]["edit"]["changes"][URI][0]["newText"], "relu", "{actions}");

    // Elsewhere, and for help that is not a replacement, nothing.
    let range = json!({ "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 1 } });
    let none = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": URI }, "range": range, "context": { "diagnostics": [] } }),
    );
    assert_eq!(none, json!([]));
    let text = "model M(x: [batch, 4]) -> [batch, 2] = x |> Dense(4 -> 2)\ntrain M {\n    epochs = 1\n}\n";
    c.change(3, text);
    let whole = json!({ "start": { "line": 0, "character": 0 }, "end": { "line": 9, "character": 0 } });
    let none = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": URI }, "range": whole, "context": { "diagnostics": [] } }),
    );
    assert_eq!(none, json!([]), "`add e.g. ...` help is not a replacement");
}
