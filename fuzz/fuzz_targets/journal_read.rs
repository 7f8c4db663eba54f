//! The event journal's readers on arbitrary segment bytes (a crash, bit
//! rot, a stranger's file): `read_range` and the writer's recovery may
//! report problems, never panic, and what they return is in seq order.
#![no_main]

use berth::supervisor::events::journal::{Journal, JournalLimits, read_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first byte splits the input into two segments, so the checks
    // between segments (seq ranges, unterminated lines) are reached too.
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) * data.len() / 256);
    let (older, live) = data.split_at(split);
    std::fs::write(dir.path().join("00000000000000000001.jsonl"), older).expect("write");
    std::fs::write(dir.path().join("00000000000000000003.jsonl"), live).expect("write");
    for after in [0, 1, 2, 5] {
        let batch = read_range(dir.path(), after, 4).expect("read");
        assert!(batch.events.len() <= 4);
        assert!(batch.events.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(batch.events.iter().all(|e| e.seq > after));
    }
    let mut journal = Journal::open(dir.path(), JournalLimits::default()).expect("open");
    let before = journal.last_seq();
    // A segment may claim seq u64::MAX: then there is no seq left, and
    // append says so instead of wrapping around.
    let Ok(event) = journal.append("fuzz", None, serde_json::Value::Null) else {
        assert_eq!(before, u64::MAX);
        return;
    };
    assert_eq!(event.seq, before + 1);
    let batch = read_range(dir.path(), before, 10).expect("read again");
    assert_eq!(batch.events.last().map(|e| e.seq), Some(event.seq));
});
