#!/bin/sh
# The bench baseline's /init: a busybox shell script doing what the seed appliances do,
# in the usual order, with nothing supervised. `cargo xtask bench` packs it with Debian's
# packaged sshd, ssh-keygen, nft, dhclient and busybox and the libraries they name, and
# with the same modules and /etc as keel's image, and times it against keel
# from the kernel log: the kernel's "Run /init as init process" to the "sshd ready" marker
# below. It must stay a fair, plain shell init: no tricks that a seed would not use.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "bench-baseline: init started" > /dev/kmsg
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
hostname keel

# Kernel modules in modules.dep order (the list was made from the image's modules.dep
# for the same [modules] load list keel uses).
dir=/lib/modules/$(uname -r)
while read -r m; do
	insmod "$dir/$m" 2>/dev/null
done < /etc/bench/modules

# The network: a static ip= from the command line, else DHCP with ISC dhclient (the
# client keel runs), which goes to the background once a lease is bound.
ip link set lo up
ipconf=
for w in $(cat /proc/cmdline); do
	case $w in ip=*) ipconf=${w#ip=} ;; esac
done
case $ipconf in
"" | dhcp | on | any)
	mkdir -p /var/lib/dhcp
	dhclient -4 -sf /etc/bench/dhclient-script -cf /etc/dhcp/dhclient.conf \
		-lf /var/lib/dhcp/dhclient.leases -pf /run/dhclient.pid eth0
	;;
*)
	IFS=: read -r addr _ gw mask _ dev _ <<EOT
$ipconf
EOT
	ifconfig "${dev:-eth0}" "$addr" netmask "$mask" up
	[ -n "$gw" ] && route add default gw "$gw" dev "${dev:-eth0}"
	;;
esac
echo "bench-baseline: network up" > /dev/kmsg

# Wait for the kernel's random number generator: /dev/random blocks until it is ready.
dd if=/dev/random of=/dev/null bs=1 count=1 2>/dev/null

# The ED25519 host key where /etc/ssh/sshd_config looks for it.
mkdir -p /var/lib/keel/ssh
chmod 700 /var/lib/keel /var/lib/keel/ssh
ssh-keygen -q -t ed25519 -N '' -C root@keel -f /var/lib/keel/ssh/ssh_host_ed25519_key

# The same nftables ruleset keel renders from the appliance config.
nft -f /etc/bench/ruleset.nft

# sshd on 2222; ready once the port listens (2222 is 08AE in /proc/net/tcp, state 0A).
mkdir -p /run/sshd
chmod 755 /run/sshd
/usr/sbin/sshd -D -E /var/log/sshd.log &
until grep -q ':08AE 0\{8,32\}:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
	usleep 10000
done
echo "bench-baseline: sshd ready" > /dev/kmsg

# A console shell, again whenever it ends; PID 1 only waits for it.
while :; do
	setsid cttyhack sh
	sleep 1
done
