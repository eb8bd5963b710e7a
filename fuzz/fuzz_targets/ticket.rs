//! Tickets: `PeerAddr::from_ticket` and `Ticket::from_str`.
//!
//! Input: a mode byte, then either the ticket text, or the ticket's content bytes, which the
//! target wraps in a valid checksum and base32 so that the CBOR decoder behind them is reached.
//! Checks: both entry points agree; a decoded address re-encodes to a ticket that decodes to
//! the same address.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_transport::{DomainTag, PeerAddr, Ticket};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check(text);
        }
    } else {
        let digest = DomainTag::new("weft/ticket/1").digest(rest);
        let mut bytes = rest.to_vec();
        bytes.extend_from_slice(&digest[..4]);
        let body = data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase();
        check(&format!("{}{body}", Ticket::PREFIX));
    }
});

fn check(text: &str) {
    let addr = PeerAddr::from_ticket(text);
    let ticket = text.parse::<Ticket>();
    match (&addr, &ticket) {
        (Ok(addr), Ok(ticket)) => assert_eq!(&PeerAddr::from(ticket.clone()), addr),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("from_ticket and Ticket::from_str disagree: {addr:?} vs {ticket:?}"),
    }
    let Ok(addr) = addr else {
        return;
    };
    let again = addr.to_ticket();
    assert_eq!(again, Ticket::from(addr.clone()).to_string());
    // A canonical encoding is never longer than what decoded, except for lists whose
    // definite-length header outgrows an indefinite one: only those may exceed the limit.
    if again.len() <= Ticket::MAX_LEN {
        assert_eq!(
            PeerAddr::from_ticket(&again).expect("a re-encoded ticket decodes"),
            addr
        );
    }
}
