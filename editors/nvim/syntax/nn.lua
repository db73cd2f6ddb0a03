-- Syntax highlighting for .nn files (the language server adds semantic
-- tokens on top: layers, functions and keyword arguments by meaning).
if vim.b.current_syntax then
  return
end

vim.cmd([[
  syntax keyword nnDeclaration fn layer model optimizer train use
  syntax keyword nnStorage param buffer state let
  syntax keyword nnKeyword return if else step with on scan in along from
  syntax keyword nnBoolean true false
  syntax keyword nnDtype f32 f64 i32 bool
  syntax keyword nnPrimitiveType int float str

  syntax match nnNumber "\<\d\+\>"
  syntax match nnFloat "\<\d\+\(\.\d\+\([eE][+-]\=\d\+\)\=\|[eE][+-]\=\d\+\)\>"
  syntax region nnString start=+"+ end=+"+ end=+$+ oneline
  syntax match nnLayer "\<\u\w*\ze\s*("
  syntax match nnCall "\<\l\w*\ze\s*("
  syntax match nnOperator "|>\|->\|\.\.\.\|[-+*/^@]"

  syntax keyword nnTodo TODO FIXME XXX contained
  syntax match nnDocComment "///.*$" contains=nnTodo
  syntax match nnComment "//\([^/].*\)\=$" contains=nnTodo
  syntax region nnBlockComment start="/\*" end="\*/" contains=nnTodo

  highlight default link nnDeclaration Keyword
  highlight default link nnStorage StorageClass
  highlight default link nnKeyword Keyword
  highlight default link nnBoolean Boolean
  highlight default link nnDtype Type
  highlight default link nnPrimitiveType Type
  highlight default link nnNumber Number
  highlight default link nnFloat Float
  highlight default link nnString String
  highlight default link nnLayer Structure
  highlight default link nnCall Function
  highlight default link nnOperator Operator
  highlight default link nnTodo Todo
  highlight default link nnDocComment SpecialComment
  highlight default link nnComment Comment
  highlight default link nnBlockComment Comment
]])

vim.b.current_syntax = "nn"
