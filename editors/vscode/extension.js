// The VS Code side of nnc: starts `nnc lsp` for .nn files and lets
// vscode-languageclient map the protocol onto the editor (diagnostics,
// hover, inlay hints, definitions, completion, outline, semantic
// highlighting, Format Document).
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function createClient() {
  const command = vscode.workspace.getConfiguration("nnc").get("path") || "nnc";
  const serverOptions = {
    run: { command, args: ["lsp"], transport: TransportKind.stdio },
    debug: { command, args: ["lsp"], transport: TransportKind.stdio },
  };
  const clientOptions = {
    documentSelector: [{ language: "nn" }],
    outputChannelName: "nnc",
  };
  return new LanguageClient("nnc", "nnc language server", serverOptions, clientOptions);
}

async function activate(context) {
  client = createClient();
  context.subscriptions.push(
    vscode.commands.registerCommand("nnc.restartServer", async () => {
      if (client) {
        await client.stop();
      }
      client = createClient();
      await client.start();
    }),
    // A changed binary path takes effect on the next start.
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("nnc.path")) {
        vscode.commands.executeCommand("nnc.restartServer");
      }
    })
  );
  try {
    await client.start();
  } catch (err) {
    vscode.window.showErrorMessage(
      `nnc: could not start \`${vscode.workspace.getConfiguration("nnc").get("path")} lsp\` (${err.message}). ` +
        "Install nnc (cargo install --path .) or set nnc.path."
    );
  }
}

async function deactivate() {
  if (client) {
    await client.stop();
  }
}

module.exports = { activate, deactivate };
