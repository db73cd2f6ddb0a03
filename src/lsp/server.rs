//! The message loop: initialize, dispatch requests and notifications,
//! publish diagnostics.

use super::convert::LineIndex;
use super::document::{Document, Snapshot};
use super::{actions, complete, diagnostics, hover, inlay, nav, semantic, signature, stdlib};
use crate::base::Span;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _, PublishDiagnostics};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, InlayHintRequest, Request as _,
    SemanticTokensFullRequest, SignatureHelpRequest,
};
use lsp_types::*;
use serde_json::Value;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::rc::Rc;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Turns spans into locations: the open file, or a stdlib file on disk.
pub struct Locator {
    pub stdlib_dir: Option<PathBuf>,
}

impl Locator {
    pub fn location(&self, snap: &Snapshot, uri: &Url, span: Span) -> Option<Location> {
        if span.file == snap.comp.root {
            let range = snap.lines.range(&snap.text, span.start as usize, span.end as usize);
            return Some(Location::new(uri.clone(), range));
        }
        let file = snap.comp.db.file(span.file);
        // A stdlib file (written to the cache), or a file a `use` loaded.
        let path = if file.builtin {
            stdlib::path_of(self.stdlib_dir.as_ref()?, &file.name)?
        } else {
            PathBuf::from(&file.name)
        };
        let uri = Url::from_file_path(path).ok()?;
        let lines = LineIndex::new(&file.text);
        Some(Location::new(uri, lines.range(&file.text, span.start as usize, span.end as usize)))
    }
}

pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::INCREMENTAL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["(".into(), ",".into(), ">".into()]),
            ..Default::default()
        }),
        signature_help_provider: Some(SignatureHelpOptions {
            trigger_characters: Some(vec!["(".into(), ",".into()]),
            retrigger_characters: Some(vec![">".into(), ":".into()]),
            ..Default::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        inlay_hint_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(SemanticTokensOptions {
            legend: semantic::legend(),
            full: Some(SemanticTokensFullOptions::Bool(true)),
            range: None,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Stack for the thread that compiles: parsing and checking recurse over
/// the expression tree, and a generated file with thousands of nested
/// operators would overflow the main thread's 8 MiB (an abort no
/// `catch_unwind` can catch). Only the pages used are committed.
pub const STACK_SIZE: usize = 256 << 20;

/// Serve on stdin/stdout until the client says `exit`.
pub fn serve_stdio() -> Result<(), Error> {
    let (connection, io) = Connection::stdio();
    let server = std::thread::Builder::new()
        .name("nnc-lsp".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            // The error is not `Send`; carry its text out of the thread.
            serve(connection).map_err(|e| e.to_string())
        })?;
    server.join().map_err(|_| "the server thread panicked")??;
    io.join()?;
    Ok(())
}

/// Serve on any connection (stdio, or in memory for tests).
pub fn serve(connection: Connection) -> Result<(), Error> {
    let init = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": { "name": "nnc", "version": env!("CARGO_PKG_VERSION") },
    });
    let (id, _params) = connection.initialize_start()?;
    connection.initialize_finish(id, init)?;
    let dir = stdlib::dir();
    let stdlib_dir = match stdlib::materialise(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            eprintln!(
                "nnc lsp: cannot write the stdlib to {}: {e}; definitions in the stdlib are unavailable",
                dir.display()
            );
            None
        }
    };
    // Fault injection for tests: `NNC_LSP_PANIC_ON=textDocument/hover`
    // makes that request panic, to show a panic is an error response and
    // the server goes on (tests/it/lsp_stdio.rs).
    let panic_on = std::env::var("NNC_LSP_PANIC_ON").ok();
    let mut server = Server {
        docs: HashMap::new(),
        loc: super::Locator { stdlib_dir },
        out: vec![],
    };
    // After `shutdown` the protocol wants every further request answered
    // with an error until `exit` (lsp-server's own `handle_shutdown` gives
    // up on the connection instead, which ended the server).
    let mut shut_down = false;
    for msg in &connection.receiver {
        match msg {
            Message::Request(req) => {
                if shut_down || req.method == "shutdown" {
                    let response = if shut_down {
                        Response::new_err(req.id, ErrorCode::InvalidRequest as i32, "the server is shutting down".into())
                    } else {
                        Response::new_ok(req.id, ())
                    };
                    shut_down = true;
                    connection.sender.send(Message::Response(response))?;
                    continue;
                }
                let id = req.id.clone();
                let method = req.method.clone();
                let response = match catch_unwind(AssertUnwindSafe(|| {
                    if panic_on.as_deref() == Some(req.method.as_str()) {
                        panic!("injected by NNC_LSP_PANIC_ON");
                    }
                    server.request(req)
                })) {
                    Ok(Ok(value)) => Response::new_ok(id, value),
                    Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
                    Err(panic) => {
                        let message = format!("internal error in {method}: {}", panic_message(&panic));
                        eprintln!("nnc lsp: {message}");
                        Response::new_err(id, ErrorCode::InternalError as i32, message)
                    }
                };
                connection.sender.send(Message::Response(response))?;
            }
            Message::Notification(n) => {
                if n.method == "exit" {
                    return Ok(());
                }
                if shut_down {
                    continue;
                }
                let method = n.method.clone();
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| server.notify(n))) {
                    eprintln!("nnc lsp: internal error in {method}: {}", panic_message(&panic));
                }
            }
            Message::Response(_) => {}
        }
        for n in server.out.drain(..) {
            connection.sender.send(Message::Notification(n))?;
        }
    }
    Ok(())
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

struct Server {
    docs: HashMap<Url, Document>,
    loc: Locator,
    /// Notifications to send after the current message.
    out: Vec<Notification>,
}

type Reply = Result<Value, (ErrorCode, String)>;

fn params<P: serde::de::DeserializeOwned>(v: Value) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(v).map_err(|e| (ErrorCode::InvalidParams, e.to_string()))
}

fn json<T: serde::Serialize>(v: T) -> Reply {
    serde_json::to_value(v).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}

/// The display name of a document: its path when it has one.
fn name_of(uri: &Url) -> String {
    uri.to_file_path().map_or_else(|_| uri.to_string(), |p| p.display().to_string())
}

impl Server {
    fn doc(&self, uri: &Url) -> Result<&Document, (ErrorCode, String)> {
        self.docs
            .get(uri)
            .ok_or_else(|| (ErrorCode::InvalidParams, format!("document not open: {uri}")))
    }

    /// The last good snapshot and the cursor's offset in it.
    fn at(&self, p: &TextDocumentPositionParams) -> Result<(Rc<Snapshot>, usize), (ErrorCode, String)> {
        let good = self.doc(&p.text_document.uri)?.good.clone();
        let offset = good.lines.offset(&good.text, p.position);
        Ok((good, offset))
    }

    fn request(&mut self, req: Request) -> Reply {
        match req.method.as_str() {
            HoverRequest::METHOD => {
                let p: HoverParams = params(req.params)?;
                let (snap, offset) = self.at(&p.text_document_position_params)?;
                json(hover::hover(&snap, offset))
            }
            GotoDefinition::METHOD => {
                let p: GotoDefinitionParams = params(req.params)?;
                let uri = p.text_document_position_params.text_document.uri.clone();
                let (snap, offset) = self.at(&p.text_document_position_params)?;
                json(nav::definition(&snap, &uri, &self.loc, offset).map(GotoDefinitionResponse::Scalar))
            }
            Completion::METHOD => {
                let p: CompletionParams = params(req.params)?;
                let doc = self.doc(&p.text_document_position.text_document.uri)?;
                let offset = doc.current.lines.offset(&doc.current.text, p.text_document_position.position);
                json(CompletionResponse::Array(complete::complete(&doc.current, &doc.good, offset)))
            }
            SignatureHelpRequest::METHOD => {
                let p: SignatureHelpParams = params(req.params)?;
                let doc = self.doc(&p.text_document_position_params.text_document.uri)?;
                let offset = doc
                    .current
                    .lines
                    .offset(&doc.current.text, p.text_document_position_params.position);
                json(signature::signature_help(&doc.current, &doc.good, offset))
            }
            DocumentSymbolRequest::METHOD => {
                let p: DocumentSymbolParams = params(req.params)?;
                let doc = self.doc(&p.text_document.uri)?;
                json(DocumentSymbolResponse::Nested(nav::document_symbols(&doc.good)))
            }
            SemanticTokensFullRequest::METHOD => {
                let p: SemanticTokensParams = params(req.params)?;
                let doc = self.doc(&p.text_document.uri)?;
                json(SemanticTokensResult::Tokens(SemanticTokens {
                    result_id: None,
                    data: semantic::tokens(&doc.current, &doc.good),
                }))
            }
            InlayHintRequest::METHOD => {
                let p: InlayHintParams = params(req.params)?;
                let snap = &self.doc(&p.text_document.uri)?.good;
                let from = snap.lines.offset(&snap.text, p.range.start);
                let to = snap.lines.offset(&snap.text, p.range.end);
                json(inlay::hints(snap, from, to))
            }
            Formatting::METHOD => {
                let p: DocumentFormattingParams = params(req.params)?;
                let snap = &self.doc(&p.text_document.uri)?.current;
                // Text that does not parse is left alone (no edits).
                let edits = match crate::syntax::format::format(&snap.text) {
                    Ok(out) if out != snap.text => vec![TextEdit::new(snap.lines.range(&snap.text, 0, snap.text.len()), out)],
                    _ => vec![],
                };
                json(edits)
            }
            CodeActionRequest::METHOD => {
                let p: CodeActionParams = params(req.params)?;
                let uri = p.text_document.uri;
                let resolve = self.resolver(&uri);
                let snap = &self.doc(&uri)?.current;
                let from = snap.lines.offset(&snap.text, p.range.start);
                let to = snap.lines.offset(&snap.text, p.range.end);
                let fixes = actions::quick_fixes(snap, &uri, &name_of(&uri), &resolve, from, to);
                json(fixes.into_iter().map(CodeActionOrCommand::CodeAction).collect::<Vec<_>>())
            }
            _ => Err((ErrorCode::MethodNotFound, format!("unsupported request {}", req.method))),
        }
    }

    fn notify(&mut self, n: Notification) {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Ok(p) = serde_json::from_value::<DidOpenTextDocumentParams>(n.params) else {
                    return;
                };
                let resolve = self.resolver(&p.text_document.uri);
                let doc = Document::open(
                    &name_of(&p.text_document.uri),
                    p.text_document.text,
                    p.text_document.version,
                    &resolve,
                );
                self.docs.insert(p.text_document.uri.clone(), doc);
                self.publish(&p.text_document.uri);
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) = serde_json::from_value::<DidChangeTextDocumentParams>(n.params) else {
                    return;
                };
                let uri = p.text_document.uri;
                let resolve = self.resolver(&uri);
                let Some(doc) = self.docs.get_mut(&uri) else { return };
                let mut text = doc.current.text.clone();
                for change in p.content_changes {
                    match change.range {
                        // Incremental sync: edits in order, each against the text
                        // left by the previous one.
                        Some(r) => {
                            let lines = LineIndex::new(&text);
                            let (a, b) = (lines.offset(&text, r.start), lines.offset(&text, r.end));
                            text.replace_range(a.min(b)..b.max(a), &change.text);
                        }
                        None => text = change.text,
                    }
                }
                doc.update(&name_of(&uri), text, p.text_document.version, &resolve);
                self.publish(&uri);
            }
            DidCloseTextDocument::METHOD => {
                let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(n.params) else {
                    return;
                };
                self.docs.remove(&p.text_document.uri);
                self.send_diagnostics(p.text_document.uri, vec![], None);
            }
            _ => {}
        }
    }

    /// Loads what `use` lines of the document at `uri` name, as `nnc check`
    /// does (`use layers` is `layers.nn` beside the file, `use "a/b.nn"` a
    /// relative path), preferring the text of open documents to the disk.
    fn resolver(&self, uri: &Url) -> impl Fn(&str) -> Option<(String, String)> {
        let dir = uri.to_file_path().ok().and_then(|p| p.parent().map(PathBuf::from));
        let open: HashMap<PathBuf, String> = self
            .docs
            .iter()
            .filter_map(|(u, d)| Some((u.to_file_path().ok()?, d.current.text.clone())))
            .collect();
        move |target: &str| {
            let dir = dir.as_ref()?;
            let file = if target.ends_with(".nn") {
                dir.join(target)
            } else {
                dir.join(format!("{}.nn", target.replace('.', "/")))
            };
            let text = open.get(&file).cloned().or_else(|| std::fs::read_to_string(&file).ok())?;
            Some((file.display().to_string(), text))
        }
    }

    fn publish(&mut self, uri: &Url) {
        let Some(doc) = self.docs.get(uri) else { return };
        let diags = diagnostics::to_lsp(&doc.current, uri, &self.loc);
        let version = Some(doc.version);
        self.send_diagnostics(uri.clone(), diags, version);
    }

    fn send_diagnostics(&mut self, uri: Url, diagnostics: Vec<lsp_types::Diagnostic>, version: Option<i32>) {
        let params = PublishDiagnosticsParams { uri, diagnostics, version };
        self.out.push(Notification::new(PublishDiagnostics::METHOD.into(), params));
    }
}
