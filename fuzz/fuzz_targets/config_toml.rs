//! Config files: every layer's `Config` and the simulators' scenario files, from TOML.
//!
//! Input: a selector byte, then the text. Checks: what parses serializes to TOML that parses
//! again and serializes to the same text.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match selector % 7 {
        0 => check::<weft_gossip::Config>(text),
        1 => check::<weft_discovery::Config>(text),
        2 => check::<weft_registry::Config>(text),
        3 => check::<weft_sync::proto::Config>(text),
        4 => check::<weft_gossip::sim::ScenarioFile>(text),
        5 => check::<weft_discovery::sim::ScenarioFile>(text),
        _ => check::<weft_registry::sim::ScenarioFile>(text),
    }
});

fn check<T: Serialize + DeserializeOwned + Debug>(text: &str) {
    let Ok(value) = toml::from_str::<T>(text) else {
        return;
    };
    // Some values have no TOML form (a `None` inside an array); those are not a decoder bug.
    let Ok(written) = toml::to_string(&value) else {
        return;
    };
    let again: T = toml::from_str(&written)
        .unwrap_or_else(|err| panic!("re-written config does not parse: {err}\n{written}"));
    assert_eq!(
        toml::to_string(&again).unwrap(),
        written,
        "re-written config is not stable"
    );
}
