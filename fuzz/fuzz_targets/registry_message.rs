//! The registry's wire messages: `Request` and `Response` (CBOR in frames of at most
//! `MAX_MESSAGE_SIZE`), with the signed records and removals inside.
//!
//! Input: a control byte (bit 0: request or response), then the bytes.
//! Checks: what decodes encodes, decodes to an equal value, and encodes to the same bytes; the
//! records inside pass or fail their checks without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_fuzz::assert_round_trip;
use weft_registry::{MAX_MESSAGE_SIZE, RecordLimits, Request, Response, Time};
use weft_transport::cbor_decode;

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    if bytes.len() > MAX_MESSAGE_SIZE {
        return;
    }
    let limits = RecordLimits::default();
    let now = Time(u64::from(control) << 32);
    if control & 1 == 0 {
        if let Ok(request) = cbor_decode::<Request>(bytes) {
            assert_round_trip(&request);
            match &request {
                Request::AddProvider { record } => {
                    let _ = record.payload().validate(now, &limits);
                }
                Request::RemoveProvider { removal } => {
                    let _ = removal.payload().validate(now, &limits);
                }
                _ => {}
            }
        }
    } else if let Ok(response) = cbor_decode::<Response>(bytes) {
        assert_round_trip(&response);
        if let Response::Providers { providers, .. } = &response {
            for record in providers {
                let _ = record.payload().validate(now, &limits);
            }
        }
    }
});
