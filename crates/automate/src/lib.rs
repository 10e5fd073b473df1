//! The automation engine: YAML scripts that drive a VM's screen over VNC, the way a person would.
//!
//! A script ([`Script`], loaded by [`load_file`]) is a list of steps — wait for a text, click it, type, press
//! keys — followed by an optional SSH health check. The format is the original runner's, loaded unchanged, with
//! extensions (regex patterns, alternatives, regions, minimum confidence, per-character typing delay, step
//! descriptions, secret typing). Loading checks everything up front and reports every problem with its
//! line and column, so `vmkit automate check` needs no VNC server.
//!
//! Module map:
//! - [`yaml`]: the YAML document as a tree of positioned nodes (serde-saphyr underneath);
//! - [`load`]: the checks that turn that tree into a [`Script`] or a list of [`Diagnostic`]s;
//! - [`script`]: the typed model; [`keys`]: key names (resolved by the RFB client's key table);
//! - the SSH health check itself lives in the `ssh` crate ([`script::HealthCheck`] is its model);
//! - [`result`]: what a run did (the `--json` object), rendered by [`report`] (`report.html`) through the
//!   escaping [`html`] tree; [`debug`] writes the debug directory, [`annotate`] draws on screenshots;
//! - [`redact`]: keeps typed secrets and passwords out of every output; [`vars`]: script variables (`${name}`);
//! - [`runner`]: runs a script over VNC ([`screen`]: the screen and its text, [`find`]: matching rules), or
//!   against a recording of an earlier run ([`mod@replay`]); [`source`] is where the screen comes from, and
//!   [`recording`] the frames and input a `--debug` run records for replay;
//! - [`mod@record`]: `vmkit automate record`, a VNC proxy that writes a script (and a recording) from what a
//!   person does in a VNC viewer.

pub mod annotate;
pub mod debug;
pub mod find;
pub mod html;
pub mod keys;
pub mod load;
pub mod record;
pub mod recording;
pub mod redact;
pub mod replay;
pub mod report;
pub mod result;
pub mod runner;
pub mod screen;
pub mod script;
pub mod source;
pub mod time;
pub mod vars;
pub mod yaml;

/// Runs blocking work (OCR) from async code: through `block_in_place` on a multi-threaded runtime, so the
/// runtime's other tasks move to another thread meanwhile; inline on a current-thread runtime, where
/// `block_in_place` would panic and there is no other thread to move to.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

pub use load::{Diagnostic, ScriptError, load_file, load_str};
pub use runner::{ClickPolicy, ReplayOptions, RunOptions, replay, run};
pub use script::{Action, Script, Step};
