//! Linux capabilities: names to numbers and masks, and the capset(2) layout.
//!
//! The masks are computed in the parent before a fork (`spawn.rs` applies them in the
//! child with raw system calls, so nothing here runs after the fork but the two plain
//! structs). keel does not use the caps crate: it would allocate in the child.

use appliance::CAPABILITIES;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
pub const VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub version: u32,
    pub pid: i32,
}

/// `struct __user_cap_data_struct` (one of two words).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Data {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

/// The number of a capability name (`CAP_NET_ADMIN` or `net_admin`, any case).
pub fn number(name: &str) -> Option<u32> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAPABILITIES
        .iter()
        .position(|c| *c == full)
        .and_then(|i| u32::try_from(i).ok())
}

/// The mask of the named capabilities, or the first name that is not one.
pub fn mask(names: &[String]) -> Result<u64, String> {
    let mut m = 0u64;
    for n in names {
        let bit = number(n).filter(|&b| b < 64).ok_or_else(|| n.clone())?;
        m |= 1u64 << bit;
    }
    Ok(m)
}

/// The two 32-bit words of a mask, low first, as capset wants them.
pub fn split(mask: u64) -> [u32; 2] {
    [(mask & 0xffff_ffff) as u32, (mask >> 32) as u32]
}

/// The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap), or the
/// highest keel knows when that cannot be read.
pub fn last_cap() -> i32 {
    let known = i32::try_from(CAPABILITIES.len()).unwrap_or(41) - 1;
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|n| (0..64).contains(n))
        .unwrap_or(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_numbers() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_NET_BIND_SERVICE"), Some(10));
        assert_eq!(number("net_admin"), Some(12));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn masks_and_words() {
        let m = mask(&["CAP_NET_BIND_SERVICE".into(), "CAP_BPF".into()]);
        assert_eq!(m, Ok((1 << 10) | (1 << 39)));
        assert_eq!(split((1 << 10) | (1 << 39)), [1 << 10, 1 << 7]);
        assert_eq!(mask(&["CAP_X".into()]), Err("CAP_X".to_string()));
    }
}
