//! `pwhost`: run a Proxy-Wasm plugin against a scripted exchange, or inspect one.
//! See `pwhost help` and the README.

fn main() -> std::process::ExitCode {
    let code = pwhost::cli::main(std::env::args_os().skip(1), std::io::stdout(), std::io::stderr());
    std::process::ExitCode::from(code)
}
