package entry

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/errdefs"
)

// ErrNotRunnable wraps the entry's explanation of why the program could not
// be started (not found, not executable, ...).
var ErrNotRunnable = errdefs.New(errdefs.ErrInvalid, "command could not be started")

// Host is sandboxd's end of the control socket.
type Host struct {
	f *os.File
	r *bufio.Reader
}

// NewPair returns the host end and the file to hand to the sandbox as its
// first extra file (fd 3).
func NewPair() (*Host, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("entry: socketpair: %w", err)
	}
	h := os.NewFile(uintptr(fds[0]), "entry-host")
	return &Host{f: h, r: bufio.NewReader(h)}, os.NewFile(uintptr(fds[1]), "entry-sandbox"), nil
}

// Close closes the host end; a parked entry then exits.
func (h *Host) Close() error { return h.f.Close() }

// File exposes the socket so that callers can set deadlines or close it.
func (h *Host) File() *os.File { return h.f }

func (h *Host) expect(want msgType) ([]byte, error) {
	t, payload, err := readMsg(h.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("entry: sandbox ended before %q: %w", want, io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	if t == msgFailed {
		return nil, fmt.Errorf("%w: %s", ErrNotRunnable, payload)
	}
	if t != want {
		return nil, fmt.Errorf("entry: got message %q, want %q", t, want)
	}
	return payload, nil
}

// WaitReady blocks until the entry is parked.
func (h *Host) WaitReady() error {
	_, err := h.expect(msgReady)
	return err
}

// Start sends the program and waits until it runs; it returns the
// program's pid inside the sandbox.
func (h *Host) Start(l *Launch) (int, error) {
	if err := writeMsg(h.f, msgLaunch, l.Marshal()); err != nil {
		return 0, err
	}
	p, err := h.expect(msgStarted)
	if err != nil {
		return 0, err
	}
	if len(p) != 4 {
		return 0, errors.New("entry: malformed start message")
	}
	return int(binary.BigEndian.Uint32(p)), nil
}

// Wait blocks until the program ends and returns its wait status. An error
// means the entry ended without reporting (it was killed).
func (h *Host) Wait() (unix.WaitStatus, error) {
	p, err := h.expect(msgExited)
	if err != nil {
		return 0, err
	}
	if len(p) != 4 {
		return 0, errors.New("entry: malformed exit message")
	}
	return unix.WaitStatus(binary.BigEndian.Uint32(p)), nil
}
