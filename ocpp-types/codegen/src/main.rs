//! Writes ocpp-types' generated sources: `cargo run -p ocpp-types-codegen`.
//!
//! Reads `ocpp-schemas/schemas/{v16,v201,v21}/*.json`, writes `ocpp-types/src/{v16,v201,v21}/`
//! and `ocpp-schemas/tests/types_roundtrip.rs` (the round-trip test needs the schemas, and
//! ocpp-schemas depends on ocpp-types, not the reverse), and deletes stale `.rs` files from the generated
//! directories.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let codegen = Path::new(env!("CARGO_MANIFEST_DIR"));
    let types_root = codegen.parent().expect("ocpp-types").to_path_buf();
    let schema_root = types_root.join("../ocpp-schemas/schemas");
    match run(&types_root, &schema_root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ocpp-types-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(types_root: &Path, schema_root: &Path) -> Result<(), String> {
    let files = ocpp_types_codegen::generate(schema_root)?;
    let mut written = 0;
    for (rel, text) in &files {
        let path = types_root.join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            written += 1;
        }
    }
    let mut removed = 0;
    for dir in ocpp_types_codegen::GENERATED_DIRS {
        for path in ocpp_types_codegen::rs_files(&types_root.join(dir)) {
            let rel = path.strip_prefix(types_root).expect("under root");
            if !files.contains_key(rel) {
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                removed += 1;
            }
        }
    }
    print!("{}", ocpp_types_codegen::summary(schema_root)?);
    println!(
        "{} files generated ({written} changed, {removed} stale removed)",
        files.len()
    );
    Ok(())
}
