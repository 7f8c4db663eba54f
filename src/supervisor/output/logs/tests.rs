use super::*;
use crate::supervisor::output::rotation::log_files;
use crate::supervisor::spec::logging::check_logging;

#[test]
fn lines_are_joined_split_and_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("json.log");
    let mut w = LogWriter::new(path.clone());
    w.write_output(Stream::Stdout, b"hel").unwrap();
    w.write_output(Stream::Stderr, b"oops\n").unwrap();
    w.write_output(Stream::Stdout, b"lo\nsecond\npart").unwrap();
    w.flush_partial(Stream::Stdout).unwrap();
    let logs: Vec<_> = read_log(&path, None)
        .unwrap()
        .into_iter()
        .map(|e| (e.stream, e.log))
        .collect();
    assert_eq!(
        logs,
        [
            (Stream::Stderr, "oops\n".into()),
            (Stream::Stdout, "hello\n".into()),
            (Stream::Stdout, "second\n".into()),
            (Stream::Stdout, "part".into())
        ]
    );
    assert_eq!(read_log(&path, Some(1)).unwrap()[0].log, "part");
}

#[test]
fn long_lines_are_split_at_16k() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("json.log");
    let mut w = LogWriter::new(path.clone());
    w.write_output(Stream::Stdout, &vec![b'x'; MAX_LINE_BYTES * 2 + 10])
        .unwrap();
    w.write_output(Stream::Stdout, b"\n").unwrap();
    let sizes: Vec<_> = read_log(&path, None)
        .unwrap()
        .into_iter()
        .map(|e| e.log.len())
        .collect();
    assert_eq!(sizes, [MAX_LINE_BYTES, MAX_LINE_BYTES, 11]);
}

#[test]
fn the_format_is_dockers_json_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("json.log");
    LogWriter::new(path.clone())
        .write_output(Stream::Stdout, b"a\n")
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(r#"{"log":"a\n","stream":"stdout","time":""#),
        "{text}"
    );
    assert!(text.trim_end().ends_with("Z\"}"), "{text}");
}
fn small_limits(max_size: &str, max_files: u32) -> LoggingSpec {
    serde_json::from_value(serde_json::json!({"max_size": max_size, "max_files": max_files}))
        .unwrap()
}

#[test]
fn rotation_keeps_max_files_each_within_max_size_and_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("json.log");
    let mut w = LogWriter::new(path.clone()).with_limits(&small_limits("4k", 3));
    let lines: Vec<String> = (0..500)
        .map(|i| format!("line {i:04} {}\n", "x".repeat(i % 37)))
        .collect();
    for l in &lines {
        w.write_output(Stream::Stdout, l.as_bytes()).unwrap();
    }
    let files = log_files(&path).unwrap();
    assert_eq!(files.len(), 3);
    for (f, _) in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.len() <= 4096,
            "{} has {} bytes",
            f.display(),
            text.len()
        );
        assert!(text.ends_with('\n'));
        for l in text.lines() {
            serde_json::from_str::<LogEntry>(l).expect("every line is whole JSON");
        }
    }
    // Read across the files, oldest first: the newest lines, in order,
    // ending with the last one written.
    let read: Vec<String> = read_log(&path, None)
        .unwrap()
        .into_iter()
        .map(|e| e.log)
        .collect();
    assert!(read.len() > 30);
    assert_eq!(read[..], lines[lines.len() - read.len()..]);
    let tail: Vec<String> = read_log(&path, Some(5))
        .unwrap()
        .into_iter()
        .map(|e| e.log)
        .collect();
    assert_eq!(tail[..], lines[lines.len() - 5..]);
}

#[test]
fn a_line_longer_than_max_size_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("json.log");
    let mut w = LogWriter::new(path.clone()).with_limits(&small_limits("4k", 2));
    w.write_output(Stream::Stdout, b"short\n").unwrap();
    w.write_output(Stream::Stdout, &[b'y'; 10_000]).unwrap();
    w.write_output(Stream::Stdout, b"\nafter\n").unwrap();
    let sizes: Vec<usize> = read_log(&path, None)
        .unwrap()
        .iter()
        .map(|e| e.log.len())
        .collect();
    assert_eq!(sizes, [10_001, 6]);
}

#[test]
fn a_reopened_writer_continues_the_size_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("json.log");
    let limits = small_limits("4k", 2);
    let line = format!("{}\n", "z".repeat(1000));
    for _ in 0..3 {
        let mut w = LogWriter::new(path.clone()).with_limits(&limits);
        w.write_output(Stream::Stdout, line.as_bytes()).unwrap();
        w.write_output(Stream::Stdout, line.as_bytes()).unwrap();
    }
    for (f, _) in log_files(&path).unwrap() {
        assert!(std::fs::metadata(f).unwrap().len() <= 4096);
    }
}

#[test]
fn pipes_are_copied_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("json.log");
    let mut w = LogWriter::new(path.clone());
    let (r, wr) = nix::unistd::pipe2(OFlag::O_NONBLOCK).unwrap();
    nix::unistd::write(&wr, b"one\ntwo\nthree\n").unwrap();
    let c = w.copy_pipe(r.as_fd(), Stream::Stdout, 8);
    assert_eq!((c.bytes, c.closed), (8, false));
    let c = w.copy_pipe(r.as_fd(), Stream::Stdout, 1000);
    assert_eq!((c.bytes, c.closed), (6, false));
    drop(wr);
    assert!(w.copy_pipe(r.as_fd(), Stream::Stdout, 1000).closed);
    let logs: Vec<String> = read_log(&path, None)
        .unwrap()
        .into_iter()
        .map(|e| e.log)
        .collect();
    assert_eq!(logs, ["one\n", "two\n", "three\n"]);
}

#[test]
fn the_console_gets_name_prefixed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = LogWriter::new(dir.path().join("json.log"));
    let (r, wr) = nix::unistd::pipe().unwrap();
    w.set_console("web", Some(File::from(wr)));
    w.write_output(Stream::Stdout, b"hello\npart").unwrap();
    w.flush_partial(Stream::Stdout).unwrap();
    w.write_notice("stopped").unwrap();
    w.set_console("web", None);
    let mut got = String::new();
    std::io::Read::read_to_string(&mut File::from(r), &mut got).unwrap();
    assert_eq!(got, "web: hello\nweb: part\nweb: berth: stopped\n");
}

#[test]
fn a_full_console_loses_lines_not_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = LogWriter::new(dir.path().join("json.log"));
    let (r, wr) = nix::unistd::pipe().unwrap();
    w.set_console("c", Some(File::from(wr)));
    // Far more than a pipe holds: a blocking write would hang here.
    let line = format!("{}\n", "q".repeat(1000));
    for _ in 0..1000 {
        w.write_output(Stream::Stdout, line.as_bytes()).unwrap();
    }
    let mut r = File::from(r);
    set_nonblocking(r.as_fd()).unwrap();
    let mut drained = Vec::new();
    let _ = std::io::Read::read_to_end(&mut r, &mut drained);
    w.write_output(Stream::Stdout, b"last\n").unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut r, &mut rest);
    assert!(
        rest.starts_with("c: berth: ") && rest.contains(" lines not shown\nc: last\n"),
        "{rest}"
    );
    // The log itself has everything.
    assert_eq!(
        read_log(&dir.path().join("json.log"), None).unwrap().len(),
        1001
    );
}

#[test]
fn logging_limits_are_checked() {
    let ok = LoggingSpec::default();
    assert!(check_logging(&ok).is_empty());
    let bad: LoggingSpec = serde_json::from_value(serde_json::json!(
        {"max_size": 1000, "max_files": 0, "rate": "512b", "burst": 100}
    ))
    .unwrap();
    let fields: Vec<String> = check_logging(&bad)
        .into_iter()
        .map(|(p, _)| p.join("."))
        .collect();
    assert_eq!(
        fields,
        [
            "logging.max_size",
            "logging.max_files",
            "logging.rate",
            "logging.burst"
        ]
    );
    let memory: LoggingSpec =
        serde_json::from_value(serde_json::json!({"driver": "memory", "max_size": "128m"}))
            .unwrap();
    assert_eq!(
        check_logging(&memory)[0].1,
        "expected 4096 to 67108864 bytes, got 134217728"
    );
    let many: LoggingSpec = serde_json::from_value(serde_json::json!({"max_files": 101})).unwrap();
    assert_eq!(check_logging(&many)[0].1, "must be 1 to 100");
}

#[test]
fn a_spec_that_names_no_driver_gets_the_default() {
    // The default is process-wide: this test only reads it (other tests
    // run in parallel); tests/logs_memory.rs sets it through berth.json.
    let unnamed = LoggingSpec::default();
    assert_eq!(unnamed.driver, None);
    assert_eq!(effective_driver(&unnamed), LogDriver::JsonFile);
    let named: LoggingSpec =
        serde_json::from_value(serde_json::json!({"driver": "memory"})).unwrap();
    assert_eq!(effective_driver(&named), LogDriver::Memory);
    let dir = tempfile::tempdir().unwrap();
    assert!(
        LogWriter::new(dir.path().join("a.log"))
            .with_limits(&named)
            .is_memory()
    );
}
