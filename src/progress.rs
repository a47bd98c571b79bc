//! Progress on stderr for record and replay, drawn only when stderr is a terminal (indicatif
//! hides itself otherwise), so pipes and CI logs stay clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner for an open-ended run: `record`. It starts hidden, so the lines printed while
/// connecting stay above it; `show` it at the first message.
pub fn spinner() -> ProgressBar {
    let bar = ProgressBar::hidden();
    // The template is fixed and valid; a failure would only cost the styling.
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {elapsed_precise} {pos} messages ({per_sec}) {msg}")
    {
        bar.set_style(style);
    }
    bar
}

pub fn show(bar: &ProgressBar) {
    if bar.is_hidden() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
    }
}

/// A bar with an ETA for a known number of messages: `replay`.
pub fn bar(total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} messages ({per_sec}, ETA {eta}) {msg}")
    {
        bar.set_style(style);
    }
    bar
}
