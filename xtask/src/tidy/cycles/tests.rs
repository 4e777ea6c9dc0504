//! Unit tests of the module-cycle check on synthetic file sets.

use super::*;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: format!("src/{path}"),
        module: module_path(Path::new(path)).expect("a module file"),
        text: text.into(),
    }
}

fn modules(paths: &[&str]) -> Vec<Vec<String>> {
    paths
        .iter()
        .map(|p| module_path(Path::new(p)).unwrap_or_default())
        .collect()
}

#[test]
fn maps_files_to_module_paths() {
    let m = modules(&[
        "lib.rs", "main.rs", "a.rs", "a/mod.rs", "a/b.rs", "a/b/c.rs",
    ]);
    let want: Vec<Vec<String>> = [&[][..], &[], &["a"], &["a"], &["a", "b"], &["a", "b", "c"]]
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(m, want);
    assert_eq!(module_path(Path::new("bin/tool.rs")), None);
}

#[test]
fn reads_use_groups_inline_paths_and_super() {
    let here = vec!["a".to_string(), "b".to_string()];
    let text = "use crate::{x, y::z as w, q::{self, r::*}};\n\
                fn f() { crate::m::n::f(); super::s::T::new(); self::k::g() }\n\
                pub(in crate::hidden) fn v() {}\n\
                // crate::comment::ignored\n\
                const S: &str = \"crate::string::ignored\";\n";
    let refs: Vec<String> = references(&here, text)
        .into_iter()
        .map(|(line, p)| format!("{line}:{}", p.join("::")))
        .collect();
    assert_eq!(
        refs,
        [
            "1:x",
            "1:y::z",
            "1:q",
            "1:q::r",
            "2:m::n::f",
            "2:a::s::T::new",
            "2:a::b::k::g"
        ]
    );
}

#[test]
fn super_inside_an_inline_module_is_the_file_module() {
    let here = vec!["a".to_string()];
    let text = "mod inner {\n    use super::helper;\n}\nuse super::top;\n";
    let refs: Vec<Vec<String>> = references(&here, text).into_iter().map(|r| r.1).collect();
    assert_eq!(refs, [vec!["a", "helper"], vec!["top"]]);
}

#[test]
fn test_modules_are_ignored() {
    let text = "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n";
    let refs: Vec<Vec<String>> = references(&[], text).into_iter().map(|r| r.1).collect();
    assert_eq!(refs, [vec!["a"]]);
}

#[test]
fn a_two_cycle_is_found_with_its_use_sites() {
    let files = [
        file("lib.rs", "mod a;\nmod b;\n"),
        file("a.rs", "use crate::b::Thing;\n"),
        file("b.rs", "\n\nfn f() { crate::a::g() }\n"),
    ];
    let found = check("k", &files);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("module cycle a -> b -> a"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("src/a.rs:1 uses b; src/b.rs:3 uses a"),
        "{}",
        found[0]
    );
}

#[test]
fn a_three_cycle_through_groups_and_super() {
    let files = [
        file("lib.rs", "use crate::{a, b, c};\n"),
        file("a/mod.rs", "mod b;\nuse crate::{c::X, d};\n"),
        file("a/b.rs", "use super::X;\nuse super::super::d;\n"),
        file("c.rs", "use crate::a::b::Y;\n"),
        file("d.rs", "pub fn d() {}\n"),
    ];
    let found = check("k", &files);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("module cycle a -> c -> a::b -> a"),
        "{}",
        found[0]
    );
}

#[test]
fn root_descendants_and_self_are_not_edges() {
    let files = [
        file("lib.rs", "use crate::a::b;\n"),
        file(
            "a/mod.rs",
            "use crate::a::b::X;\nuse self::b::Y;\nuse crate::Top;\n",
        ),
        file("a/b.rs", "use super::Z;\nuse crate::Top;\n"),
    ];
    assert_eq!(check("k", &files), Vec::<String>::new());
}

#[test]
fn unknown_paths_resolve_to_the_longest_module() {
    let files = [
        file("a.rs", "use crate::b::c::Missing;\n"),
        file("b.rs", "use crate::a::X;\n"),
    ];
    let found = check("k", &files);
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("a -> b -> a"));
}
