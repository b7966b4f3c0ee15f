//! An SQS record to the DynamoDB history item the intake writes for it. The input's first byte
//! is the length of the message id, the next that many bytes the message id, the rest the body
//! (both as UTF-8, bad bytes replaced). The body is parsed at the fixed clock and at one taken
//! from the input, one with each backend's rules (see `common::clocks`). A rejection becomes
//! `rejection_entry`, an event `event_entry` (applied) with a long reason that echoes the whole
//! event. Its item must build, within DynamoDB's limits: item 400 KB, partition key 2,048
//! bytes, sort key 1,024 bytes.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use shared::adapters::dynamo::{MAX_ITEM_BYTES, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, history_item, item_size};
use shared::domain::employee::EventOutcome;
use shared::domain::event::{EventRules, HrEvent};
use shared::domain::time::Timestamp;
use shared::domain::validation::MAX_REASON_CHARS;
use shared::ports::HistoryEntry;
use shared::services::QueueRecord;
use shared::services::intake::{event_entry, rejection_entry};

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else { return };
    let (message_id, body) = rest.split_at(usize::from(len).min(rest.len()));
    let record = QueueRecord {
        message_id: common::text(message_id).into_owned(),
        body: common::text(body).into_owned(),
        receive_count: 1,
        group_id: None,
    };
    for (now, username) in common::clocks(data) {
        let rules = EventRules::at(Timestamp::from_millis(now), username);
        let entry = match HrEvent::parse(&record.body, rules) {
            Err(invalid) => {
                common::check_invalid(&record.body, &invalid);
                rejection_entry(&record, &invalid, now)
            }
            Ok(event) => {
                common::check_event(&record.body, &event, rules);
                // A reason as long as the event itself: `event_entry` must bound it.
                let reason = format!("{event:?} from message {:?}", record.message_id);
                event_entry(&event, &record, EventOutcome::Applied, &reason, now)
            }
        };
        check_entry(&entry);
    }
});

fn check_entry(entry: &HistoryEntry) {
    let reason_chars = entry.reason.chars().count();
    assert!(reason_chars <= MAX_REASON_CHARS, "history reason of {reason_chars} characters");
    let item = history_item(entry).unwrap_or_else(|e| panic!("history_item refused {entry:?}: {e}"));
    let size = item_size(&item);
    assert!(size <= MAX_ITEM_BYTES, "history item of {size} bytes (max {MAX_ITEM_BYTES}): {entry:?}");
    let key = |name: &str| -> &str {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .unwrap_or_else(|| panic!("history item without a string {name}: {item:?}"))
    };
    let (pk, sk) = (key("pk"), key("sk"));
    assert!(!pk.is_empty() && pk.len() <= MAX_PARTITION_KEY_BYTES, "pk of {} bytes: {pk:?}", pk.len());
    assert!(!sk.is_empty() && sk.len() <= MAX_SORT_KEY_BYTES, "sk of {} bytes: {sk:?}", sk.len());
}
