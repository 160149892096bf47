//! Lists the embedded schema files so `src/lib.rs` can `include!` a table of `include_str!`s.
//! The table is derived from the directory, so a schema file cannot be forgotten.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut code = String::new();
    for (dir, feature) in [("v16", "v16"), ("v201", "v201"), ("v21", "v21")] {
        let path = Path::new(&manifest).join("schemas").join(dir);
        println!("cargo:rerun-if-changed={}", path.display());
        let mut names: Vec<String> = fs::read_dir(&path)
            .expect("schema directory exists")
            .map(|e| {
                e.expect("readable entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        writeln!(code, "#[cfg(feature = \"{feature}\")]").unwrap();
        writeln!(
            code,
            "static FILES_{}: &[(&str, &str)] = &[",
            dir.to_uppercase()
        )
        .unwrap();
        for name in &names {
            writeln!(
                code,
                "    (\"{name}\", include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/schemas/{dir}/{name}\"))),"
            )
            .unwrap();
        }
        writeln!(code, "];").unwrap();
    }
    fs::write(Path::new(&out).join("files.rs"), code).expect("OUT_DIR is writable");
}
