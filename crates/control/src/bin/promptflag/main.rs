fn main() {
    let root = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    match promptflag_control::lint::check(&root) {
        Ok((_, d)) => {
            for x in &d {
                println!("{x}");
            }
            if let Ok(b) = promptflag_control::build::build(
                &promptflag_control::repo::load(&root).unwrap().0,
                &d,
                &Default::default(),
            ) {
                b.write(std::path::Path::new("/tmp/pfbuild")).unwrap();
            }
        }
        Err(e) => println!("ERR {e}"),
    }
}
