//! One file per command group: its `Args` and its `run`.

pub mod attach;
pub mod containers;
pub mod control;
pub mod daemon;
pub mod events;
pub mod exec;
pub mod images;
pub mod inspect;
pub mod login;
pub mod network;
pub mod pull;
pub mod run;
pub mod stats;
pub mod system;
pub mod tty;
