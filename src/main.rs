fn main() -> std::process::ExitCode {
    openpanda::cli::main()
}
