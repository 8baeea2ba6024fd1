//! VM test harness: QEMU with a serial console you can expect on and type into.
