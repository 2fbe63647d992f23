package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// IDsPerSandbox is how many host uids (and gids) each sandbox maps: a full
// 16-bit id space, so that every id a program may use inside has a host id
// that belongs to no other sandbox.
const IDsPerSandbox = 65536

// IDRange is the block of host ids that sandboxes' user namespaces map
// onto. It is cut into slots of IDsPerSandbox; each running sandbox holds
// one slot, so no two sandboxes running at the same time share a host id,
// and none maps onto a real user of the host.
type IDRange struct {
	Start uint32
	Size  uint32
}

// DefaultIDRange is used when neither the configuration nor /etc/subuid
// gives sandboxd a range: 512 slots starting at 2^30, far above the ids
// Debian hands out (useradd's SUB_UID_MAX is 600100000).
var DefaultIDRange = IDRange{Start: 1 << 30, Size: 512 * IDsPerSandbox}

// SubIDUser is the /etc/subuid and /etc/subgid entry sandboxd reads.
const SubIDUser = "sandboxd"

// ParseIDRange parses "START:SIZE".
func ParseIDRange(s string) (IDRange, error) {
	a, b, ok := strings.Cut(s, ":")
	start, err1 := strconv.ParseUint(a, 10, 32)
	size, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return IDRange{}, invalidf("id range %q: expected START:SIZE", s)
	}
	r := IDRange{Start: uint32(start), Size: uint32(size)}
	return r, r.check()
}

func (r IDRange) check() error {
	switch {
	case r.Size < IDsPerSandbox:
		return invalidf("id range %d:%d: holds no sandbox (each needs %d ids)", r.Start, r.Size, IDsPerSandbox)
	case r.Start < IDsPerSandbox:
		return invalidf("id range %d:%d: overlaps the host's own users (start at %d or above)", r.Start, r.Size, IDsPerSandbox)
	case uint64(r.Start)+uint64(r.Size) > 1<<32-1:
		return invalidf("id range %d:%d: ends past the 32-bit id space", r.Start, r.Size)
	}
	return nil
}

func (r IDRange) slots() int { return int(r.Size / IDsPerSandbox) }

// SubIDRange reads the range of user sandboxd from /etc/subuid and checks
// /etc/subgid grants the same; ok is false when there is no entry.
func SubIDRange() (r IDRange, ok bool, err error) {
	u, uok, err := readSubID("/etc/subuid")
	if err != nil || !uok {
		return IDRange{}, false, err
	}
	g, gok, err := readSubID("/etc/subgid")
	if err != nil {
		return IDRange{}, false, err
	}
	if !gok || g != u {
		return IDRange{}, false, fmt.Errorf("/etc/subgid must give %s the same range as /etc/subuid (%d:%d)", SubIDUser, u.Start, u.Size)
	}
	return u, true, u.check()
}

func readSubID(path string) (IDRange, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return IDRange{}, false, nil
	}
	if err != nil {
		return IDRange{}, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) == 3 && parts[0] == SubIDUser {
			r, err := ParseIDRange(parts[1] + ":" + parts[2])
			return r, err == nil, err
		}
	}
	return IDRange{}, false, sc.Err()
}

// HostIDLock is the one file, for the whole host, whose byte ranges lock
// host ids: a slot holds an open-file-description lock on the bytes
// [base, base+IDsPerSandbox). It does not depend on --run-dir or the state
// dir, so the daemon, any number of `sandboxd exec` and a second daemon
// never map the same ids at once, even with ranges that overlap without
// being aligned to each other's slots.
const HostIDLock = "/run/sandboxd-userns.lock"

// idSlot is one sandbox's share of the range, held through its lock.
type idSlot struct {
	base uint32
	lock *os.File
}

func (s *idSlot) release() {
	if s != nil && s.lock != nil {
		s.lock.Close() // drops the lock: it belongs to this descriptor
	}
}

// allocSlot takes the first free slot. An OFD lock belongs to its open
// file, not to the process, so two slots of one daemon conflict as two of
// different processes do; and it dies with the holder, so a crashed
// sandboxd frees its slots.
func (e *Engine) allocSlot() (*idSlot, error) {
	for i := 0; i < e.ids.slots(); i++ {
		base := e.ids.Start + uint32(i)*IDsPerSandbox
		f, err := lockRange(HostIDLock, int64(base), IDsPerSandbox)
		if err == nil {
			return &idSlot{base: base, lock: f}, nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("locking host ids: %w", err)
		}
	}
	return nil, fmt.Errorf("all %d user-namespace id slots are in use: give sandboxd a larger range", e.ids.slots())
}

// lockRange opens path and write-locks bytes [off, off+n) without waiting.
func lockRange(path string, off, n int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: n}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
