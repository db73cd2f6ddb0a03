-- nnc's language server in Neovim's built-in LSP client (Neovim 0.10+).
--
--   require("nnc").setup({ cmd = { "nnc", "lsp" } })
--
-- starts `nnc lsp` for every buffer of filetype `nn`, turns on inlay hints
-- (shapes of `let`s and pipeline stages) and maps nothing: use the usual
-- LSP keys (K for hover, gd / CTRL-] for definition, CTRL-S in insert mode
-- for signature help on 0.11, gq or vim.lsp.buf.format() to format).
local M = {}

M.defaults = {
  -- The server command; `nnc` must be on PATH, or give a full path.
  cmd = { "nnc", "lsp" },
  -- Show shapes as inlay hints.
  inlay_hints = true,
  -- Format the buffer with `nnc lsp` before writing it.
  format_on_save = false,
}

local function root_dir(bufnr)
  local file = vim.api.nvim_buf_get_name(bufnr)
  local found = vim.fs.find({ ".git", "Cargo.toml" }, { upward = true, path = vim.fs.dirname(file) })[1]
  return found and vim.fs.dirname(found) or vim.fs.dirname(file)
end

function M.start(bufnr, opts)
  local client_id = vim.lsp.start({
    name = "nnc",
    cmd = opts.cmd,
    root_dir = root_dir(bufnr),
  }, { bufnr = bufnr })
  if client_id and opts.inlay_hints and vim.lsp.inlay_hint then
    vim.lsp.inlay_hint.enable(true, { bufnr = bufnr })
  end
  if client_id and opts.format_on_save then
    vim.api.nvim_create_autocmd("BufWritePre", {
      buffer = bufnr,
      callback = function()
        vim.lsp.buf.format({ bufnr = bufnr, id = client_id })
      end,
    })
  end
  return client_id
end

function M.setup(user)
  local opts = vim.tbl_deep_extend("force", M.defaults, user or {})
  vim.filetype.add({ extension = { nn = "nn" } })
  local group = vim.api.nvim_create_augroup("nnc_lsp", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = "nn",
    callback = function(args)
      M.start(args.buf, opts)
    end,
  })
end

return M
