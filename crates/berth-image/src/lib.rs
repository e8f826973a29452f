//! berth-image: references, digests, the registry client, the content store, layer unpacking,
//! snapshots and GC. It knows nothing of containers: the engine asks it for images and for the
//! mount description of an image's layers.

pub mod digest;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod manifest;
pub mod platform;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use error::{ErrorKind, ImageError};
pub use platform::Platform;
pub use reference::Reference;
pub use store::Store;
