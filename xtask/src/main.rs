//! `cargo xtask`: see `cargo xtask help`.

use clap::Parser;

fn main() {
    // A bad command line: clap prints the problem and the usage, and exits 2.
    let cli = xtask::cli::Cli::parse();
    if let Err(error) = xtask::run(cli.command) {
        eprintln!("xtask: {error:#}");
        std::process::exit(xtask::exit_code(&error));
    }
}
