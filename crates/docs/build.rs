//! Turns every `rust` block of the tested Markdown files into a function of the library, so a
//! snippet that no longer compiles fails the build of the docs test and one that fails at run time
//! fails the test.

#[path = "src/markdown.rs"]
#[allow(dead_code)]
mod markdown;

#[path = "src/files.rs"]
mod files;

use files::FILES;

use std::fmt::Write as _;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = String::new();
    let mut table = String::new();
    for file in FILES {
        let path = root.join(file);
        println!("cargo::rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)?;
        for block in markdown::blocks(&text)
            .into_iter()
            .filter(|b| b.lang == "rust")
        {
            let name = format!("snippet_{}", table.lines().count());
            // The block is the body of a function, so its `use` lines, `let`s and `?` read as they
            // would in a user's `main`.
            writeln!(
                out,
                "/// {file}, the block at line {line}.\n\
                 pub fn {name}(edge: &str, read_key: &str) -> Result<(), Box<dyn std::error::Error>> {{\n\
                 {body}\nOk(())\n}}\n",
                line = block.line,
                body = block.text,
            )?;
            writeln!(table, "    (\"{file}\", {}, {name}),", block.line)?;
        }
    }
    writeln!(
        out,
        "/// Every snippet: its file, the line of its fence, and the function.\n\
         pub const ALL: &[(&str, usize, fn(&str, &str) -> Result<(), Box<dyn std::error::Error>>)] = &[\n\
         {table}];"
    )?;
    let target = Path::new(&std::env::var("OUT_DIR")?).join("snippets.rs");
    std::fs::write(target, out)?;
    Ok(())
}
