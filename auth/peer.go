package auth

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Peer is the process at the other end of a Unix-socket connection, as the
// kernel recorded it when the connection was made (SO_PEERCRED and
// SO_PEERGROUPS): it cannot be forged, and it does not change if the
// process later changes its ids.
type Peer struct {
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups
}

// HasGroup reports whether gid is the peer's primary or a supplementary group.
func (p *Peer) HasGroup(gid uint32) bool { return p.GID == gid || slices.Contains(p.Groups, gid) }

// PeerOf reads the credentials of c's peer.
func PeerOf(c *net.UnixConn) (*Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var p *Peer
	var opErr error
	err = raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			opErr = fmt.Errorf("SO_PEERCRED: %w", err)
			return
		}
		p = &Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
		p.Groups, opErr = peerGroups(int(fd))
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13+), growing the buffer on ERANGE.
func peerGroups(fd int) ([]uint32, error) {
	n := 64
	for tries := 0; tries < 4; tries++ {
		buf := make([]uint32, n)
		size := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch errno {
		case 0:
			return buf[:size/4], nil
		case unix.ERANGE:
			n = int(size/4) + 1
			continue
		default:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		}
	}
	return nil, errors.New("SO_PEERGROUPS: the group list keeps growing")
}
