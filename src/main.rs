fn main() {
    std::process::exit(nnc::cli::main());
}
