//! pgvshard command line.

fn main() {
    println!("pgvshard {}", env!("CARGO_PKG_VERSION"));
}
