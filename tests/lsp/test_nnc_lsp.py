"""End-to-end test of `nnc lsp` with a real LSP client (pytest-lsp, on pygls).

The client announces Visual Studio Code's capabilities and drives the built
binary over stdio the way the editor does: initialize, open a file with a
shape error, receive the diagnostic at the right range, fix the text,
receive an empty list, hover, inlay hints, completion, go to definition (into
the stdlib), format.
`cargo test` runs this through tests/it/lsp_e2e.rs, which passes the binary
in NNC_BIN.
"""

import os
import pathlib
import tempfile

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

CACHE = tempfile.mkdtemp(prefix="nnc-lsp-e2e-")
MODEL = pathlib.Path(CACHE) / "model.nn"
URI = MODEL.as_uri()

BROKEN = """\
// The seeds' MNIST network with a wrong layer size in the middle.
model Mlp(x: [batch, 28, 28]) -> [batch, 10] =
    x |> flatten
      |> Dense(784 -> 128, relu)
      |> Dense(100 -> 64, relu)
      |> Dense(64 -> 10)
"""
FIXED = BROKEN.replace("Dense(100 -> 64", "Dense(128 -> 64")


def position(text: str, needle: str, delta: int = 0) -> types.Position:
    """The LSP position `delta` characters into `needle` (ASCII text)."""
    offset = text.index(needle) + delta
    line = text.count("\n", 0, offset)
    return types.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


def offset(text: str, p: types.Position) -> int:
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[: p.line]) + p.character


def text_at(text: str, r: types.Range) -> str:
    return text[offset(text, r.start) : offset(text, r.end)]


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[os.environ["NNC_BIN"], "lsp"],
        # The stdlib is written to $XDG_CACHE_HOME/nnc/...: use a fresh one.
        server_env={**os.environ, "XDG_CACHE_HOME": CACHE},
    )
)
async def client(lsp_client: LanguageClient):
    params = types.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    result = await lsp_client.initialize_session(params)
    assert result.capabilities.hover_provider
    yield
    await lsp_client.shutdown_session()


async def test_edit_hover_definition_format(client: LanguageClient):
    # Open a file with a wrong layer size: one E0301 on the bad Dense call.
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="nn", version=1, text=BROKEN)
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    diags = client.diagnostics[URI]
    assert [d.code for d in diags] == ["E0301"], diags
    d = diags[0]
    assert d.severity == types.DiagnosticSeverity.Error
    assert text_at(BROKEN, d.range) == "Dense(100 -> 64, relu)"
    assert d.range.start == position(BROKEN, "Dense(100")
    assert "expects input [..., 100], found [batch, 128]" in d.message, d.message
    assert "help: " in d.message and "Dense(128 -> 64, relu)" in d.message, d.message
    assert d.related_information, "the secondary label comes as related information"
    # ... on the stage whose output has the conflicting shape.
    earlier = text_at(BROKEN, d.related_information[0].location.range)
    assert earlier.startswith("x |> flatten") and earlier.endswith("Dense(784 -> 128, relu)"), earlier

    # Fix it: the diagnostics are cleared.
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=FIXED)],
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[URI]) == []

    # Hover on a layer: its shape in the pipeline, signature and doc.
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=URI), position=position(FIXED, "Dense(128", 2))
    )
    assert hover is not None
    value = hover.contents.value
    assert "[batch, 64]" in value, value
    assert "layer Dense(inputs: int, outputs: int, activation: fn = identity)" in value, value

    # Inlay hints: the shape after every pipeline stage.
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=9, character=0)),
        )
    )
    labels = [h.label for h in hints]
    assert labels == [" [batch, 784]", " [batch, 128]", " [batch, 64]", " [batch, 10]"], labels

    # Completion inside a layer call: its keyword arguments first.
    items = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=position(FIXED, "relu)", 0))
    )
    items = items.items if isinstance(items, types.CompletionList) else items
    by_label = {i.label: i for i in items}
    assert "activation:" in by_label, sorted(by_label)
    assert by_label["relu"].detail == "fn relu(x)"

    # Go to definition of a stdlib function: a file on disk, at its name.
    loc = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=position(FIXED, "flatten", 3))
    )
    assert isinstance(loc, types.Location), loc
    path = pathlib.Path(loc.uri.removeprefix("file://"))
    assert path.name == "layers.nn" and str(path).startswith(CACHE), loc.uri
    assert text_at(path.read_text(), loc.range) == "flatten"

    # Format a messy version: the edit gives the canonical text.
    messy = FIXED.replace("Dense(64 -> 10)", "Dense( 64->10 )").replace("x |> flatten", "x|>flatten")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=3),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=messy)],
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert edits and len(edits) == 1
    assert edits[0].range.start == types.Position(line=0, character=0)
    assert edits[0].new_text == FIXED
