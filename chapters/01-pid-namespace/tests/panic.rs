//! Even a bug leaves nothing behind: when a layer panics, the layers
//! prepared before it are still cleaned up, and `run` returns an error.
//! (A program of its own: `run` installs signal handlers in the process.)

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use ch01::Layer;

static CLEANED_UP: AtomicBool = AtomicBool::new(false);

/// Prepares fine; records its cleanup.
struct Careful;

impl Layer for Careful {
    fn cleanup(&mut self) -> Result<()> {
        CLEANED_UP.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// A bug: panics while preparing.
struct Buggy;

impl Layer for Buggy {
    fn prepare(&mut self) -> Result<()> {
        panic!("a bug in a layer (this panic is the test's)")
    }
}

#[test]
fn a_layer_that_panics_still_gets_the_others_cleaned_up() {
    testkit::require_root();
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(Careful), Box::new(Buggy)];
    let error = ch01::run(&ch01::Process::new(vec!["true".to_string()]), &mut layers).unwrap_err();
    assert!(error.to_string().contains("panicked"), "{error}");
    assert!(
        CLEANED_UP.load(Ordering::SeqCst),
        "the first layer was not cleaned up"
    );
}
