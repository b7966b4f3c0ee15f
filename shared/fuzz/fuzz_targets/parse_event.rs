//! HR event parsing: any bytes (as a UTF-8 body, bad bytes replaced) parsed at the fixed clock
//! and at a clock taken from the input, one with each backend's user-name rules (see
//! `common::clocks`). No panic; a rejection's reason and field names are bounded and the ids it
//! keeps are valid ids; an accepted event keeps its rules (ids, clocks, cancels, hash).

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use shared::domain::event::{EventRules, HrEvent};
use shared::domain::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let body = common::text(data);
    for (now, username) in common::clocks(data) {
        let rules = EventRules::at(Timestamp::from_millis(now), username);
        match HrEvent::parse(&body, rules) {
            Ok(event) => common::check_event(&body, &event, rules),
            Err(invalid) => common::check_invalid(&body, &invalid),
        }
    }
});
