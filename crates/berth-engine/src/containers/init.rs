//! `--init`: berth-init, built static by build.rs and embedded here, installed once under the
//! state root and bind-mounted read-only at Docker's path in the container.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::EngineError;

/// The static berth-init binary.
pub const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

/// Where the init appears inside the container (Docker's docker-init path).
pub const CONTAINER_PATH: &str = "/sbin/docker-init";

/// Writes the init to `ROOT/bin/berth-init` (0555) unless an identical copy is there; a
/// different or partial file is replaced atomically (temp file + fsync + rename).
pub fn install(root: &Path) -> Result<PathBuf, EngineError> {
    let dir = root.join("bin");
    let path = dir.join("berth-init");
    if std::fs::read(&path).is_ok_and(|b| b == BINARY) {
        return Ok(path);
    }
    let io = |op: &str, p: &Path| {
        let msg = format!("{op} {}", p.display());
        move |e: std::io::Error| EngineError::Internal(format!("{msg}: {e}"))
    };
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let tmp = dir.join(format!(".berth-init.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o555)
            .open(&tmp)
            .map_err(io("creating", &tmp))?;
        f.write_all(BINARY).map_err(io("writing", &tmp))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o555))
            .map_err(io("setting mode of", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io("renaming into", &path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_init_is_a_static_elf() {
        assert_eq!(&BINARY[..4], b"\x7fELF");
        // no PT_INTERP program header: nothing to load it with
        let u16_at = |o: usize| u16::from_le_bytes([BINARY[o], BINARY[o + 1]]) as usize;
        let phoff = u64::from_le_bytes(BINARY[0x20..0x28].try_into().expect("8 bytes")) as usize;
        let interp = (0..u16_at(0x38)).any(|i| {
            let o = phoff + i * u16_at(0x36);
            u32::from_le_bytes(BINARY[o..o + 4].try_into().expect("4 bytes")) == 3
        });
        assert!(!interp, "berth-init must be static");
    }

    #[test]
    fn install_writes_once_and_repairs() {
        let root = std::env::temp_dir().join(format!("berth-init-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let p = install(&root).expect("install");
        assert_eq!(std::fs::read(&p).expect("read"), BINARY);
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o555);
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p).expect("meta"));
        install(&root).expect("again");
        let ino2 = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p).expect("meta"));
        assert_eq!(ino, ino2, "an identical copy is kept");
        // a truncated copy (a crash mid-write before this scheme) is replaced
        std::fs::remove_file(&p).expect("rm");
        std::fs::write(&p, &BINARY[..100]).expect("truncate");
        install(&root).expect("repair");
        assert_eq!(std::fs::read(&p).expect("read"), BINARY);
        let _ = std::fs::remove_dir_all(&root);
    }
}
