//! TCP readiness probes: is anything listening on a port?
//!
//! A `ready = "tcp:PORT"` service is ready once a socket in this network namespace listens
//! on PORT, on any address and either family. The answer comes from the kernel's socket
//! tables, /proc/net/tcp and /proc/net/tcp6, not from connecting: a connect would be a
//! client the service has to accept, and sshd logs each one ("kex_exchange_identification:
//! Connection closed by remote host" on every boot's console). A port that listens
//! completes handshakes from then on, so the two tests agree; the tables also see a
//! listener bound to one non-loopback address, which a connect to loopback would miss.
//! Nothing here waits or retries: when to look again is the driver's deadline.

/// The kernel's TCP socket tables, IPv4 and IPv6.
const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// TCP_LISTEN in the `st` column.
const LISTEN: &str = "0A";

/// True when a socket listens on `port`. Unreadable tables (no procfs, no IPv6) count as
/// no listener.
pub fn listening(port: u16) -> bool {
    TABLES
        .iter()
        .any(|t| std::fs::read_to_string(t).is_ok_and(|text| table_has_listener(&text, port)))
}

/// Whether a /proc/net/tcp{,6} table has a socket in state LISTEN on `port`. Each row is
/// `sl local_address rem_address st ...`, the local address `HEXADDR:HEXPORT`.
pub fn table_has_listener(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|row| {
        let mut f = row.split_whitespace();
        let (Some(_sl), Some(local), Some(_remote), Some(state)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return false;
        };
        state == LISTEN
            && local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows as the kernel prints them: sshd on 0.0.0.0:2222 listening, a connection from
    /// the host to it, and (IPv6) a listener on [::]:8080 and one connection out of 2222.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0F02000A:08AE 0202000A:A1B2 01 00000000:00000000 02:0009B5DF 00000000     0        0 2345 2 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3456 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1234 00000000000000000000000001000000:0050 01 00000000:00000000 00:00000000 00000000     0        0 4567 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn only_a_listening_row_on_the_port_counts() {
        assert!(table_has_listener(TCP, 2222));
        assert!(table_has_listener(TCP6, 8080));
        // 0x1234 is an established connection's local port, not a listener.
        assert!(!table_has_listener(TCP6, 0x1234));
        // The remote port of a row is not ours.
        assert!(!table_has_listener(TCP, 0xA1B2));
        assert!(!table_has_listener(TCP, 22));
        assert!(!table_has_listener("", 2222));
        assert!(!table_has_listener("header only\n", 2222));
        assert!(!table_has_listener(
            "header\n garbage\n 0: x:zz y 0A\n",
            2222
        ));
    }

    #[test]
    fn a_real_listener_is_seen_and_a_closed_port_is_not() {
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
            return;
        };
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        assert!(listening(port), "port {port} is listening");
        drop(l);
        assert!(!listening(port), "port {port} is closed");
    }
}
