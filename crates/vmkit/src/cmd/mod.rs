//! One module per command group. Each exposes its clap arguments and a `run` function returning the exit code.

pub mod automate;
pub mod cloud_init;
pub mod demo;
pub mod desktop;
pub mod fetch;
pub mod image;
pub mod screen;
pub mod vm;
