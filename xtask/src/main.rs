//! `cargo xtask`: see `cargo xtask help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = xtask::run(args) {
        eprintln!("xtask: {error}");
        if error.show_usage() {
            eprintln!();
            eprint!("{}", xtask::cli::USAGE);
        }
        std::process::exit(error.exit_code());
    }
}
