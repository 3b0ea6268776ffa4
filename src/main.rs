fn main() -> std::process::ExitCode {
    portcullis::main()
}
