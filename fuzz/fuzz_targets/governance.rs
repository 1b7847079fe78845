//! The signed-governance parsers and the gate: `promptflag_governance`'s armored SSH signature
//! and blob, public key lines, the key registry, and the gate's two JSON steps. The first byte
//! chooses what the rest is read as; the gate is decided with every check's result taken from the
//! following bits of that byte, so verified and refused signatures are both exercised. Property:
//! nothing panics, an error has a code, a parsed signature's armor reads back the same, and the
//! decision accepts exactly as many results as there are checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promptflag_governance::gate::{self, GateInput};
use promptflag_governance::{PublicKey, Registry, SshSignature};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match choice % 4 {
        0 => match SshSignature::parse_armored(text) {
            Ok(signature) => {
                let again = SshSignature::parse_armored(&signature.to_armored());
                assert_eq!(again.as_ref(), Ok(&signature));
                let _ = signature.signed_data(b"message");
            }
            Err(error) => assert!(!error.code().is_empty()),
        },
        1 => {
            if let Ok(key) = PublicKey::parse(text) {
                assert_eq!(PublicKey::parse(&key.to_openssh()), Ok(key));
                let _ = key.fingerprint();
            }
            let _ = promptflag_governance::keys::parse_key_list(text);
        }
        2 => {
            if let Ok(registry) = Registry::parse(text) {
                assert_eq!(Registry::parse(&registry.to_text()).map(|r| r.serial), Ok(registry.serial));
            }
        }
        _ => {
            let Ok(input) = GateInput::parse(text) else {
                return;
            };
            let checks = gate::plan(&input).checks.len();
            let results: Vec<bool> = (0..checks).map(|i| (choice >> (2 + i % 6)) & 1 == 1).collect();
            let _ = gate::decide(&input, &results);
            let mut short = results.clone();
            short.push(true);
            assert!(gate::decide(&input, &short).is_err());
        }
    }
});
