-- `.nn` files are nnc models.
vim.filetype.add({ extension = { nn = "nn" } })
