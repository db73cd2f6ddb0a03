-- End-to-end test of editors/nvim with Neovim itself as the LSP client:
-- filetype, syntax, `require("nnc").setup()` starting `nnc lsp`, the shape
-- error at the right place, its quick fix, cleared when fixed, hover, signature help, inlay hints, go to
-- definition into the stdlib, formatting. Run by tests/it/lsp_nvim.rs:
--
--   NNC_BIN=target/debug/nnc NNC_REPO=$PWD nvim --headless --clean -l tests/lsp/nvim_e2e.lua

local bin, repo = os.getenv("NNC_BIN"), os.getenv("NNC_REPO")
local failures = {}

local function check(cond, what)
  if not cond then
    table.insert(failures, what)
  end
  return cond
end

local function finish()
  if #failures > 0 then
    io.stderr:write("FAILED:\n  " .. table.concat(failures, "\n  ") .. "\n")
    vim.cmd("cquit 1")
  end
  io.stdout:write("nvim e2e: all checks passed\n")
  -- Shut the server down first: quitting with a client still attached made
  -- Neovim's exit status depend on how fast the server noticed.
  for _, client in ipairs(vim.lsp.get_clients()) do
    client:stop()
  end
  vim.wait(5000, function()
    return #vim.lsp.get_clients() == 0
  end)
  vim.cmd("qall!")
end

local broken = {
  "// The seeds' MNIST network with a wrong layer size in the middle.",
  "model Mlp(x: [batch, 28, 28]) -> [batch, 10] =",
  "    x |> flatten",
  "      |> Dense(784 -> 128, relu)",
  "      |> Dense(100 -> 64, relu)",
  "      |> Dense(64 -> 10)",
}

vim.opt.runtimepath:append(repo .. "/editors/nvim")
vim.cmd("filetype plugin on")
vim.cmd("syntax on")
require("nnc").setup({ cmd = { bin, "lsp" } })

local dir = vim.fn.tempname()
vim.fn.mkdir(dir, "p")
local path = dir .. "/model.nn"
vim.fn.writefile(broken, path)
vim.cmd.edit(path)
local buf = vim.api.nvim_get_current_buf()

check(vim.bo[buf].filetype == "nn", "filetype is nn, got " .. vim.bo[buf].filetype)
check(vim.b[buf].current_syntax == "nn", "syntax/nn.lua loaded")
check(vim.bo[buf].commentstring == "// %s", "ftplugin sets commentstring")

if not check(vim.wait(10000, function()
  return #vim.lsp.get_clients({ bufnr = buf, name = "nnc" }) > 0
end), "nnc lsp attached") then
  finish()
end

-- The shape error, on the Dense call that must change.
vim.wait(10000, function()
  return #vim.diagnostic.get(buf) > 0
end)
local diags = vim.diagnostic.get(buf)
if check(#diags == 1, "one diagnostic, got " .. #diags) then
  local d = diags[1]
  check(d.code == "E0301", "code E0301, got " .. tostring(d.code))
  check(d.severity == vim.diagnostic.severity.ERROR, "an error")
  check(d.lnum == 4 and d.col == 9 and d.end_lnum == 4 and d.end_col == 31,
    ("range 4:9-4:31, got %d:%d-%d:%d"):format(d.lnum, d.col, d.end_lnum, d.end_col))
  check(d.message:find("help: ", 1, true) and d.message:find("Dense(128 -> 64, relu)", 1, true), "help with the fix: " .. d.message)
end

-- Fix it with the quick fix the diagnostic offers: the list empties.
vim.api.nvim_win_set_cursor(0, { 5, 12 })
vim.lsp.buf.code_action({ apply = true })
check(vim.wait(5000, function()
  return vim.api.nvim_buf_get_lines(buf, 4, 5, false)[1] == "      |> Dense(128 -> 64, relu)"
end), "the quick fix rewrites the layer: " .. vim.api.nvim_buf_get_lines(buf, 4, 5, false)[1])
check(vim.wait(10000, function()
  return #vim.diagnostic.get(buf) == 0
end), "diagnostics cleared after the fix")

-- Hover on the fixed layer.
vim.api.nvim_win_set_cursor(0, { 5, 11 })
local client = vim.lsp.get_clients({ bufnr = buf, name = "nnc" })[1]
local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
local res = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 5000) or {}
local hover = ""
for _, r in pairs(res) do
  if r.result then
    hover = r.result.contents.value
  end
end
check(hover:find("[batch, 64]", 1, true), "hover shows the stage's shape: " .. hover)
check(hover:find("layer Dense(", 1, true), "hover shows Dense's signature: " .. hover)

-- Signature help inside the call, on its third argument (`relu`).
vim.api.nvim_win_set_cursor(0, { 5, 27 })
params = vim.lsp.util.make_position_params(0, client.offset_encoding)
res = vim.lsp.buf_request_sync(buf, "textDocument/signatureHelp", params, 5000) or {}
local sig, active = "", -1
for _, r in pairs(res) do
  if r.result then
    sig = r.result.signatures[1].label
    active = r.result.activeParameter
  end
end
check(sig:find("layer Dense(", 1, true) and active == 2, ("signature help on relu: %s, parameter %d"):format(sig, active))

-- Inlay hints (enabled by setup) for the pipeline stages.
check(vim.wait(5000, function()
  return #vim.lsp.inlay_hint.get({ bufnr = buf }) > 0
end), "inlay hints shown")

-- Format a messy version.
vim.api.nvim_buf_set_lines(buf, 2, 3, false, { "    x|>flatten" })
vim.lsp.buf.format({ bufnr = buf, async = false, timeout_ms = 5000 })
check(vim.api.nvim_buf_get_lines(buf, 2, 3, false)[1] == "    x |> flatten", "formatted: " .. vim.api.nvim_buf_get_lines(buf, 2, 3, false)[1])

-- Go to definition of `flatten`: the stdlib file, at the name.
vim.api.nvim_win_set_cursor(0, { 3, 10 })
vim.lsp.buf.definition()
check(vim.wait(5000, function()
  return vim.api.nvim_buf_get_name(0):match("layers%.nn$") ~= nil
end), "definition opens layers.nn, got " .. vim.api.nvim_buf_get_name(0))
local line = vim.api.nvim_get_current_line()
check(line:find("fn flatten", 1, true), "cursor on flatten's declaration: " .. line)

finish()
