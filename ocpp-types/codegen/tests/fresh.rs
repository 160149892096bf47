//! The committed ocpp-types sources are exactly what the generator produces from the schemas.

use std::path::Path;

#[test]
fn generated_sources_are_fresh() {
    let codegen = Path::new(env!("CARGO_MANIFEST_DIR"));
    let types_root = codegen.parent().unwrap();
    let schema_root = types_root.join("../ocpp-schemas/schemas");
    let files = ocpp_types_codegen::generate(&schema_root).expect("generation succeeds");
    let mut problems = Vec::new();
    for (rel, text) in &files {
        match std::fs::read_to_string(types_root.join(rel)) {
            Ok(on_disk) if on_disk == *text => {}
            Ok(_) => problems.push(format!("{} is out of date", rel.display())),
            Err(_) => problems.push(format!("{} is missing", rel.display())),
        }
    }
    for dir in ocpp_types_codegen::GENERATED_DIRS {
        for path in ocpp_types_codegen::rs_files(&types_root.join(dir)) {
            let rel = path.strip_prefix(types_root).unwrap();
            if !files.contains_key(rel) {
                problems.push(format!("{} is stale (not generated)", rel.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "generated ocpp-types sources differ from the schemas' output; run `cargo run -p ocpp-types-codegen` and commit:\n  {}",
        problems.join("\n  ")
    );
}
