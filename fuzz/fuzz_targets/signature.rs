//! Standard Webhooks verification: never panics on any header, timestamp or body; a
//! signature made with a secret verifies with it, and no prefix of it does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sundial_sdk::webhook::{Secret, sign, verify};

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    secret: Vec<u8>,
    id: String,
    timestamp: String,
    header: String,
    body: Vec<u8>,
    now: i64,
    ts: i64,
}

fuzz_target!(|input: Input| {
    let Ok(secret) = Secret::from_bytes(input.secret) else {
        return;
    };
    let secrets = [secret];
    // Arbitrary headers: an error or a match, never a panic.
    let _ = verify(
        &secrets,
        &input.id,
        &input.timestamp,
        &input.header,
        &input.body,
        input.now,
    );
    if input.id.is_empty() {
        return;
    }
    // A real signature verifies; every proper prefix of it is refused.
    let sig = sign(&secrets[0], &input.id, input.ts, &input.body);
    let ts = input.ts.to_string();
    verify(&secrets, &input.id, &ts, &sig, &input.body, input.ts).expect("own signature verifies");
    for cut in 0..sig.len() {
        assert!(
            verify(&secrets, &input.id, &ts, &sig[..cut], &input.body, input.ts).is_err(),
            "prefix {cut} of {sig} verified"
        );
    }
});
