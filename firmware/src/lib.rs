//! Portable parts of the medq ECG monitor firmware: the ADS1292R front-end
//! driver, a fixed-point R-peak detector, beat windowing and the monitor
//! pipeline. `no_std`, no heap; the same code runs on the host (tests,
//! golden files) and on Cortex-M, and produces the same bytes.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod ads1292r;
pub mod board;
pub mod classifier;
pub mod detector;
pub mod golden;
pub mod monitor;
pub mod ring;
pub mod window;
