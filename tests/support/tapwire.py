#!/usr/bin/env python3
# A guest's NIC on a TAP, as QEMU makes one: attaches to the TAP <host-tap> of the current network namespace
# (the lab host's, where virtnet made it), makes a TAP "eth0" inside the guest's namespace <guest-netns>
# (a path such as /run/netns/vnl-g-x) and copies frames between the two until either goes. The guest's
# kernel then sees the frames the host's bridge sends to the port, and the bridge those the guest sends.
# A TAP without IFF_VNET_HDR hands userspace whole frames with their checksums done, so nothing is offloaded.
# Usage: tapwire.py <host-tap> <guest-netns> [multi_queue]
import ctypes
import errno
import fcntl
import os
import select
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_MULTI_QUEUE = 0x0002, 0x1000, 0x0100
CLONE_NEWNET = 0x40000000


def tap(name, flags):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | flags))
    return fd


host = tap(sys.argv[1], IFF_MULTI_QUEUE if sys.argv[3:] == ["multi_queue"] else 0)
libc = ctypes.CDLL(None, use_errno=True)
ns = os.open(sys.argv[2], os.O_RDONLY)
if libc.setns(ns, CLONE_NEWNET) != 0:
    sys.exit(f"setns {sys.argv[2]}: errno {ctypes.get_errno()}")
guest = tap("eth0", 0)
print("ready", flush=True)
peer = {host: guest, guest: host}
while True:
    for fd in select.select([host, guest], [], [])[0]:
        try:
            frame = os.read(fd, 65536)
        except OSError as e:
            # The host's TAP was deleted (EBADFD), or the guest's went with its namespace.
            sys.exit(f"wire ended: {e}")
        try:
            os.write(peer[fd], frame)
        except OSError as e:
            # A TAP that is down takes no frame (EIO): dropped, as a cable to a port that is down drops it.
            if e.errno != errno.EIO:
                sys.exit(f"wire ended: {e}")
