//! Fuzzes the parser of what a Windows guest prints for `vmkit image test`'s Secure Boot/TPM query (the guest's
//! output is outside input): arbitrary text as the query's output.
//!
//! Properties beyond "no panic, no hang": a parse error says something; a parsed state always gets a verdict, and
//! asking for nothing always passes.

#![no_main]

use images::windows::guest::SecurityState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match SecurityState::parse(&text) {
        Ok(state) => {
            assert!(state.check(false, false).is_ok());
            let verdict = state.check(true, true);
            assert!(verdict.as_ref().map_or_else(|e| !e.is_empty(), |ok| !ok.is_empty()));
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
