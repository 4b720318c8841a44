//! What the compiler tells a user whose element type cannot flow through a stream: the
//! library's own message, saying what to do, and not only the missing `Clone` deep inside it.
//!
//! Each case compiles a small program against the brooklet library that `cargo test` just
//! built, with the `rustc` on the path, and reads the errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The directory holding the test's dependencies, the brooklet library among them.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("target/<profile>/deps").to_path_buf()
}

/// The newest brooklet library in `deps` (the one this test run built).
fn brooklet_rlib(deps: &Path) -> PathBuf {
    std::fs::read_dir(deps)
        .expect("read the deps directory")
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libbrooklet-") && name.ends_with(".rlib")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .expect("no libbrooklet-*.rlib beside the test binary")
}

/// Compiles `program` (a library) against brooklet: `Err` holds the compiler's errors.
fn compile(name: &str, program: &str) -> Result<(), String> {
    let deps = deps_dir();
    let dir = std::env::temp_dir().join(format!("brooklet-diag-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("main.rs");
    std::fs::write(&file, program).unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut child = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "lib",
            "--emit",
            "metadata",
        ])
        .arg("--out-dir")
        .arg(&dir)
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("--extern")
        .arg(format!("brooklet={}", brooklet_rlib(&deps).display()))
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rustc");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rustc did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let errors = reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    if status.success() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Compiles `program` against brooklet, which must fail, and returns the compiler's errors.
fn compile_errors(name: &str, program: &str) -> String {
    match compile(name, program) {
        Ok(()) => panic!("the program compiled:\n{program}"),
        Err(errors) => errors,
    }
}

/// The first error is the library's message, naming the element type (which contains
/// `ty_part`; rustc may shorten its paths), with the advice.
fn assert_says_what_to_do(errors: &str, ty_part: &str) {
    let first = errors.lines().next().unwrap_or_default();
    assert!(
        first.contains("cannot flow through a brooklet stream") && first.contains(ty_part),
        "the first error is not the library's message about {ty_part}:\n{errors}"
    );
    assert!(
        errors.contains("wrap a value that is not `Clone` in `Arc`"),
        "the error does not say what to do:\n{errors}"
    );
}

#[test]
fn a_source_of_an_element_that_is_not_clone_names_the_element_and_suggests_arc() {
    let errors = compile_errors(
        "source",
        "pub fn f() { let _s: brooklet::Source<std::io::Result<String>> = brooklet::Source::new(); }",
    );
    assert_says_what_to_do(&errors, "Result<String, ");
}

#[test]
fn a_map_to_an_element_that_is_not_clone_names_the_element_and_suggests_arc() {
    let errors = compile_errors(
        "map",
        "pub fn f(s: &brooklet::Source<u32>) { let _ = s.map(|_| std::fs::File::open(\"x\")); }",
    );
    assert_says_what_to_do(&errors, "File, ");
}

#[test]
fn an_element_wrapped_in_arc_compiles() {
    // The control: the same program with the suggested fix is accepted, so the cases above
    // fail for the element type and not for the way they are compiled.
    let program = "pub fn f(s: &brooklet::Source<u32>) { \
                   let _ = s.map(|_| std::sync::Arc::new(std::fs::File::open(\"x\"))); }";
    if let Err(errors) = compile("arc", program) {
        panic!("the fixed program did not compile:\n{errors}");
    }
}
