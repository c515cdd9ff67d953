//! The `sundial` binary: see [`sundial::cli`].

fn main() -> std::process::ExitCode {
    sundial::cli::main()
}
