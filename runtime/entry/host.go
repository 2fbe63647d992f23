package entry

import (
	"bufio"
	"bytes"
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
	// ready is set when an 'R' was read where another message was
	// expected: a reusable entry parked again after its run was ended
	// before it could report the program's end.
	ready bool
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
	if t == msgReady && want != msgReady {
		h.ready = true
	}
	if t != want {
		return nil, fmt.Errorf("entry: got message %q, want %q", t, want)
	}
	return payload, nil
}

// Prepare asks the parked entry of a reusable sandbox to prepare its next
// run; WaitPrepared waits for the answer. payload is a Prepare's Marshal
// (the same for most runs: its caller encodes it once). work and tmp, the
// run's /work and /tmp as detached mounts (fsmount), go with it as
// SCM_RIGHTS, in this order; both nil, the run keeps the sandbox's own (a
// session's). They stay the caller's (the entry has its copies).
func (h *Host) Prepare(payload []byte, work, tmp *os.File) error {
	files, err := mountRights(work, tmp)
	if err != nil {
		return err
	}
	return h.sendWithRights(msgPrepare, payload, files)
}

// WaitPrepared blocks until the run Prepare asked for is ready for its
// launch, or could not be prepared (ErrNotRunnable: then the entry parks
// again, and the sandbox should serve no further run).
func (h *Host) WaitPrepared() error {
	_, err := h.expect(msgPrepared)
	return err
}

// WaitReady blocks until the entry is parked (again, for a reusable one).
func (h *Host) WaitReady() error {
	if h.ready {
		h.ready = false
		return nil
	}
	_, err := h.expect(msgReady)
	return err
}

// End asks the entry to end the run now: its PID 1 exits, and the kernel
// kills every other process of the run. A one-run entry ends the sandbox.
func (h *Host) End() error { return writeMsg(h.f, msgEnd, nil) }

// Start sends the program and waits until it runs; it returns the
// program's pid inside the sandbox and, when l asks for a terminal, its
// master (non-blocking, for the runtime's poller).
func (h *Host) Start(l *Launch) (int, *os.File, error) {
	if err := h.sendLaunch(l); err != nil {
		return 0, nil, err
	}
	fds, err := h.recvRights()
	if err != nil {
		return 0, nil, err
	}
	term, err := h.terminal(fds, l.Rows != 0)
	if err != nil {
		return 0, nil, err
	}
	p, err := h.expect(msgStarted)
	if err == nil && len(p) != 4 {
		err = errors.New("entry: malformed start message")
	}
	if err != nil {
		if term != nil {
			term.Close()
		}
		return 0, nil, err
	}
	return int(binary.BigEndian.Uint32(p)), term, nil
}

// terminal turns the descriptors that came with the answer to Launch into
// the terminal's master; any descriptor it did not ask for is closed.
func (h *Host) terminal(fds []int, want bool) (*os.File, error) {
	if !want || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		if want {
			return nil, fmt.Errorf("entry: the start message carried %d descriptors, want the terminal", len(fds))
		}
		return nil, nil
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("entry: terminal: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "terminal"), nil
}

// recvRights reads the first byte of the answer to Launch with recvmsg,
// which is where a descriptor passed with it (SCM_RIGHTS) arrives; the
// byte goes back in front of the buffered reader. Nothing is buffered at
// this point: the entry sends nothing between 'R' and that answer.
func (h *Host) recvRights() ([]int, error) {
	if h.r.Buffered() != 0 {
		return nil, errors.New("entry: unexpected message before the start")
	}
	rc, err := h.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var first [1]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), first[:], oob, unix.MSG_CMSG_CLOEXEC)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("entry: recvmsg: %w", rerr)
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("entry: control message: %w", err)
		}
		for _, m := range msgs {
			if rights, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, rights...)
			}
		}
	}
	// Put the byte back: the rest of the message is read as usual.
	h.r = bufio.NewReader(io.MultiReader(bytes.NewReader(first[:n]), h.f))
	return fds, nil
}

// Signal asks the entry to deliver sig to the running program (see
// entry.c, deliver). It fails once the entry is gone, which is harmless.
func (h *Host) Signal(sig unix.Signal) error {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(sig))
	return writeMsg(h.f, msgSignal, p[:])
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

// sendLaunch writes 'L'; a prepared run's pipes, or a one-run entry's
// passed stdio, go with it.
func (h *Host) sendLaunch(l *Launch) error {
	files, err := l.rights()
	if err != nil {
		return err
	}
	return h.sendWithRights(msgLaunch, l.Marshal(), files)
}

// sendWithRights writes a message whose descriptors go with its first
// byte (SCM_RIGHTS), where the entry's recvmsg finds them.
func (h *Host) sendWithRights(t msgType, payload []byte, files []*os.File) error {
	if len(files) == 0 {
		return writeMsg(h.f, t, payload)
	}
	msg := frame(t, payload)
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	rc, err := h.f.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		n, serr = unix.SendmsgN(int(fd), msg[:1], unix.UnixRights(fds...), nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return fmt.Errorf("entry: write message: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("entry: write message: %w", serr)
	}
	if _, err := h.f.Write(msg[n:]); err != nil {
		return fmt.Errorf("entry: write message: %w", err)
	}
	return nil
}

// rights are the descriptors that go with the launch, in the order the
// entry takes them.
func (l *Launch) rights() ([]*os.File, error) {
	_, passed := l.passed()
	if l.Pipes == nil {
		return passed, nil
	}
	if len(passed) > 0 {
		return nil, errors.New("entry: a prepared run passes its stdio in Pipes")
	}
	files := []*os.File{l.Pipes.Stdin, l.Pipes.Stdout, l.Pipes.Stderr}
	for _, f := range files {
		if f == nil {
			return nil, errors.New("entry: a prepared run needs its three pipes")
		}
	}
	return files, nil
}
