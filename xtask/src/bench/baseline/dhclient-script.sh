#!/bin/sh
# The bench baseline's hook for ISC dhclient (-sf): the few lines a seed appliance has
# instead of Debian's dhclient-script, which needs bash and iproute2.
case $reason in
PREINIT)
	ip link set "$interface" up
	;;
BOUND | RENEW | REBIND | REBOOT)
	ifconfig "$interface" "$new_ip_address" netmask "$new_subnet_mask" up
	for r in $new_routers; do
		route add default gw "$r" dev "$interface" 2>/dev/null
		break
	done
	: > /etc/resolv.conf
	for d in $new_domain_name_servers; do
		echo "nameserver $d" >> /etc/resolv.conf
	done
	;;
EXPIRE | FAIL | RELEASE | STOP)
	ifconfig "$interface" 0.0.0.0
	;;
esac
exit 0
