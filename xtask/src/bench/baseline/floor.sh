#!/bin/sh
# The bench floor's /init: the least an appliance can do to answer ssh, the lower bound
# keel is held to. It mounts what sshd needs, loads only the network's modules (the
# modular kernel), sets the static ip= the bench passes, and execs the image's own sshd
# with a host key prepared at build time: no firewall, no entropy wait, no supervision.
# sshd logs to /dev/kmsg at VERBOSE, so "Server listening on" marks it ready in the
# kernel log. Static ip= only: the floor has no DHCP client.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "bench-floor: init started" > /dev/kmsg
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
dir=/lib/modules/$(uname -r)
while read -r m; do
	insmod "$dir/$m" 2>/dev/null
done < /etc/bench/modules
ip link set lo up
for w in $(cat /proc/cmdline); do
	case $w in ip=*) ipconf=${w#ip=} ;; esac
done
IFS=: read -r addr _ gw mask _ dev _ <<EOT
$ipconf
EOT
ifconfig "${dev:-eth0}" "$addr" netmask "$mask" up
[ -n "$gw" ] && route add default gw "$gw" dev "${dev:-eth0}"
echo "bench-floor: network up" > /dev/kmsg
mkdir -p /run/sshd
chmod 755 /run/sshd
exec /usr/sbin/sshd -D -E /dev/kmsg -o LogLevel=VERBOSE
