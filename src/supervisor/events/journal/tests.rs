//! The journal's unit tests: rotation, the bound, recovery, replay.

use std::fs::OpenOptions;
use std::io::Write;

use serde_json::json;

use super::*;

fn small(segment_bytes: u64, max_segments: u32) -> JournalLimits {
    JournalLimits {
        segment_bytes,
        max_segments,
    }
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

fn append_n(j: &mut Journal, n: u64) {
    for i in 0..n {
        j.append("container.started", Some("web"), json!({"i": i}))
            .unwrap();
    }
}

#[test]
fn append_and_read_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), small(1024, 100)).unwrap();
    assert_eq!((j.first_seq(), j.last_seq()), (1, 0));
    let e = j
        .append("pull.started", None, json!({"image": "alpine"}))
        .unwrap();
    assert_eq!(
        (e.seq, e.kind.as_str(), e.container.as_deref()),
        (1, "pull.started", None)
    );
    assert!(humantime::parse_rfc3339(&e.time).is_ok(), "{}", e.time);
    append_n(&mut j, 99);
    j.sync().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() > 5, "{files:?}");
    assert_eq!(files[0], "00000000000000000001.jsonl");
    // Each file is named after its first event.
    for name in &files {
        let first: u64 = name.trim_end_matches(".jsonl").parse().unwrap();
        let text = fs::read_to_string(dir.path().join(name)).unwrap();
        let e: Event = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(e.seq, first);
        assert!(text.len() <= 1024, "{name}: {}", text.len());
    }
    let (events, oldest) = read_since(dir.path(), 0, 1000).unwrap();
    assert_eq!((seqs(&events), oldest), ((1..=100).collect(), 1));
    assert_eq!(events[0], e);
    let (events, _) = read_since(dir.path(), 37, 10).unwrap();
    assert_eq!(seqs(&events), (38..=47).collect::<Vec<_>>());
    let batch = read_range(dir.path(), 100, 10).unwrap();
    assert_eq!((batch.events.len(), batch.newest), (0, 100));
}

#[test]
fn bound_drops_the_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), small(1024, 3)).unwrap();
    append_n(&mut j, 300);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    let bytes: u64 = files
        .iter()
        .map(|f| fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    assert!(bytes <= 3 * 1024, "{bytes}");
    assert!(j.first_seq() > 200, "{}", j.first_seq());
    let (events, oldest) = read_since(dir.path(), 0, 1000).unwrap();
    assert_eq!(oldest, j.first_seq());
    assert_eq!(seqs(&events), (oldest..=300).collect::<Vec<_>>());
    assert!(j.take_problems().is_empty());
}

#[test]
fn a_cursor_older_than_the_oldest_event_reads_from_the_oldest_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), small(1024, 2)).unwrap();
    append_n(&mut j, 100);
    let (events, oldest) = read_since(dir.path(), 5, 3).unwrap();
    assert!(oldest > 6, "{oldest}");
    assert_eq!(seqs(&events), [oldest, oldest + 1, oldest + 2]);
}

#[test]
fn reopen_continues_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), small(1024, 4)).unwrap();
    append_n(&mut j, 40);
    j.sync().unwrap();
    drop(j);
    let mut j = Journal::open(dir.path(), small(1024, 4)).unwrap();
    assert_eq!(j.last_seq(), 40);
    assert_eq!(
        j.append("config.reloaded", None, Value::Null).unwrap().seq,
        41
    );
    // Lowering the bound applies at the next open.
    drop(j);
    let j = Journal::open(dir.path(), small(1024, 2)).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
    let (events, oldest) = read_since(dir.path(), 0, 100).unwrap();
    assert_eq!(oldest, j.first_seq());
    assert_eq!(seqs(&events), (oldest..=41).collect::<Vec<_>>());
}

#[test]
fn a_torn_last_line_is_cut_and_seq_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), JournalLimits::default()).unwrap();
    append_n(&mut j, 3);
    drop(j);
    let live = dir.path().join("00000000000000000001.jsonl");
    let before = fs::metadata(&live).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&live).unwrap();
    f.write_all(br#"{"seq":4,"time":"2024-01-0"#).unwrap();
    drop(f);
    // A reader takes the torn line for an append in progress, silently.
    let batch = read_range(dir.path(), 0, 10).unwrap();
    assert_eq!(
        (seqs(&batch.events), batch.problems.len()),
        (vec![1, 2, 3], 0)
    );

    let mut j = Journal::open(dir.path(), JournalLimits::default()).unwrap();
    let problems = j.take_problems();
    assert!(
        problems.len() == 1 && problems[0].contains("cut 26 bytes"),
        "{problems:?}"
    );
    assert_eq!(fs::metadata(&live).unwrap().len(), before);
    assert_eq!(j.last_seq(), 3);
    assert_eq!(
        j.append("container.exited", Some("web"), json!({"code": 1}))
            .unwrap()
            .seq,
        4
    );
    let (events, _) = read_since(dir.path(), 0, 10).unwrap();
    assert_eq!(seqs(&events), [1, 2, 3, 4]);
}

#[test]
fn zeros_after_a_power_loss_are_cut_and_an_empty_live_segment_keeps_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), small(200, 8)).unwrap();
    append_n(&mut j, 4);
    drop(j);
    let files = segment_files(dir.path());
    let live = dir.path().join(files.last().unwrap());
    fs::write(&live, vec![0u8; 300]).unwrap();
    let mut j = Journal::open(dir.path(), small(200, 8)).unwrap();
    assert_eq!(fs::metadata(&live).unwrap().len(), 0);
    assert!(!j.take_problems().is_empty());
    // The live segment's name says which seq it started at.
    let first: u64 = files
        .last()
        .unwrap()
        .trim_end_matches(".jsonl")
        .parse()
        .unwrap();
    assert_eq!(j.last_seq(), first - 1);
    assert_eq!(j.append("x", None, Value::Null).unwrap().seq, first);
}

#[test]
fn corrupt_lines_are_reported_and_skipped_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), small(300, 8)).unwrap();
    append_n(&mut j, 10);
    drop(j);
    let first = dir.path().join("00000000000000000001.jsonl");
    let text = fs::read_to_string(&first).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2);
    lines[0] = "{\"seq\":1,\"garbage";
    fs::write(&first, lines.join("\n") + "\n").unwrap();
    fs::write(dir.path().join("notes.txt"), "not a segment").unwrap();

    let mut j = Journal::open(dir.path(), small(300, 8)).unwrap();
    let problems = j.take_problems();
    assert!(
        problems.len() == 1 && problems[0].contains("line 1"),
        "{problems:?}"
    );
    assert_eq!(j.last_seq(), 10);
    let batch = read_range(dir.path(), 0, 100).unwrap();
    assert_eq!(seqs(&batch.events), (2..=10).collect::<Vec<_>>());
    assert_eq!(batch.problems.len(), 1, "{:?}", batch.problems);
}

#[test]
fn an_oversized_event_is_refused_and_uses_no_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), JournalLimits::default()).unwrap();
    append_n(&mut j, 1);
    let big = json!({"blob": "x".repeat(1 << 20)});
    let err = j
        .append("pull.progress", None, big)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pull.progress is 1048") && err.contains("more than the 65536 allowed"),
        "{err}"
    );
    assert_eq!(j.append("pull.done", None, Value::Null).unwrap().seq, 2);
    let (events, _) = read_since(dir.path(), 0, 10).unwrap();
    assert_eq!(seqs(&events), [1, 2]);
}

#[test]
fn a_missing_journal_reads_empty_and_bad_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let batch = read_range(&dir.path().join("nope"), 7, 10).unwrap();
    assert_eq!((batch.events.len(), batch.oldest, batch.newest), (0, 1, 0));
    assert!(Journal::open(dir.path(), small(0, 1)).is_err());
    assert!(Journal::open(dir.path(), small(1, 0)).is_err());
    // A segment smaller than one event still takes every event.
    let mut j = Journal::open(dir.path(), small(1, 3)).unwrap();
    append_n(&mut j, 5);
    let (events, oldest) = read_since(dir.path(), 0, 10).unwrap();
    assert_eq!((seqs(&events), oldest), (vec![3, 4, 5], 3));
}
