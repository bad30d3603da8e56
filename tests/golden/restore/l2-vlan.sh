# virtnet: brings network "l2" back as last applied. Generated: virtnet rewrites this file.
ip link show dev vn-l2 >/dev/null 2>&1 || printf '%s\n' 'link add name vn-l2 type bridge stp_state 0 forward_delay 0 vlan_filtering 1' 'link set dev vn-l2 address 52:54:00:e0:ea:e7 alias virtnet:l2' 'link set dev vn-l2 up' | ip -batch -
ip link show dev eth1.10 >/dev/null 2>&1 || printf '%s\n' 'link add link eth1 name eth1.10 type vlan id 10' 'link set dev eth1.10 alias virtnet:l2 master vn-l2 up' | ip -batch -
mkdir -p -m 0755 /run/virtnet /run/virtnet/networks /run/virtnet/networks/l2
