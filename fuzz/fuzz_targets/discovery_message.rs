//! Discovery's wire messages: `Message::decode` (catalog sync, ping, pong on direct streams)
//! and `Announcement::decode` (entries and departures on the gossip topic).
//!
//! Input: a control byte (bit 0: announcement or message; bits 1-2: the maximum size), then
//! the bytes. Checks: a message over the maximum is refused; what decodes encodes, decodes to
//! an equal value, and encodes to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_discovery::{Announcement, Config, Message, MessageError};

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let max = match (control >> 1) & 3 {
        0 => 0,
        1 => 256,
        2 => 64 * 1024,
        _ => Config::default().max_sync_message_bytes,
    };
    if control & 1 == 0 {
        match Message::decode(bytes, max) {
            Ok(message) => {
                assert!(bytes.len() <= max);
                let encoded = message.encode();
                let again = Message::decode(&encoded, usize::MAX).expect("re-encoded decodes");
                assert_eq!(again, message);
                assert_eq!(again.encode(), encoded, "encoding is not stable");
            }
            Err(MessageError::TooLarge { .. }) => assert!(bytes.len() > max),
            Err(_) => {}
        }
    } else {
        match Announcement::decode(bytes, max) {
            Ok(announcement) => {
                assert!(bytes.len() <= max);
                let encoded = announcement.encode();
                let again = Announcement::decode(&encoded, usize::MAX).expect("re-encoded decodes");
                assert_eq!(again, announcement);
                assert_eq!(again.encode(), encoded, "encoding is not stable");
            }
            Err(MessageError::TooLarge { .. }) => assert!(bytes.len() > max),
            Err(_) => {}
        }
    }
});
