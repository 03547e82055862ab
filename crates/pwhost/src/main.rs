//! `pwhost`: run a Proxy-Wasm plugin against a scripted exchange, or inspect one.
//! See `pwhost help` and the README.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::ExitCode::from(pwhost::cli::main(&args, &mut std::io::stdout(), &mut std::io::stderr()))
}
