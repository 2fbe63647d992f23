// Package entry is the sandbox's first process after libcontainer's init:
// it parks inside the finished sandbox, receives the program to run on an
// inherited socket, installs the seccomp filter, starts the program and
// reports how it ended. The host half of the conversation lives in
// package runtime; the message format both halves speak is here.
//
// The entry never parses user input as a command line: it receives argv and
// envp as lists of byte strings and hands them to execve unchanged.
package entry

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ControlFD is the descriptor on which the entry finds its control socket:
// the first of libcontainer's ExtraFiles.
const ControlFD = 3

// Arg is the argv[1] that makes sandboxd act as the entry.
const Arg = "sandbox-entry"

// ArgFresh, as argv[2], makes the entry serve many runs, each in
// namespaces of its own (fresh.c): the entry of a reusable sandbox.
const ArgFresh = "fresh"

// MaxMessage bounds a control message; argv, envp and the filter together
// must fit (the kernel's own argv+envp limit is far below it).
const MaxMessage = 64 << 20

type msgType byte

const (
	msgReady   msgType = 'R' // entry → host: parked, waiting for Launch
	msgLaunch  msgType = 'L' // host → entry: the program to run
	msgStarted msgType = 'S' // entry → host: the program runs (pid inside)
	msgFailed  msgType = 'F' // entry → host: the program could not start
	msgExited  msgType = 'X' // entry → host: the program's wait status
	msgSignal  msgType = 'K' // host → entry: deliver a client's signal
	msgEnd     msgType = 'E' // host → entry: end the run and all it started
	// A reusable entry's runs are prepared before they are asked for.
	msgPrepare  msgType = 'N' // host → entry: prepare the next run
	msgPrepared msgType = 'P' // run → host: its PID 1 is ready for 'L'
)

// Rlimit is one resource limit the entry sets before the program starts.
type Rlimit struct {
	Resource int
	Cur, Max uint64
}

// Launch is everything that differs from one run to the next.
type Launch struct {
	Args    []string
	Env     []string
	Dir     string
	Rlimits []Rlimit
	// Filter is the compiled seccomp program (struct sock_filter array).
	Filter []byte
	// Rows and Cols, when not 0, run the program on a pseudo-terminal of
	// this size instead of the sandbox's pipes: the entry sends its master
	// with the 'S' message. Both are 0 or neither.
	Rows, Cols uint16
	// Pipes, for a prepared run of a reusable sandbox, are the run's
	// stdio; nil for a one-run entry. A prepared run loaded its filter
	// with the prepare: Filter is then empty.
	Pipes *Pipes
	// Stdin and Stdout, for a one-run entry, when set, are the program's
	// stdin and stdout instead of the entry's own (one end of a pipe to
	// another sandbox: an interactive test). They go with the message as
	// SCM_RIGHTS, in this order; the entry dups them onto the program's
	// descriptors 0 and 1 and keeps no copy. A prepared run passes its
	// stdio in Pipes instead.
	Stdin, Stdout *os.File
	// CPUs, when set, are the only CPUs the program may run on
	// (sched_setaffinity before it starts): a placement, not a limit,
	// which the program may change.
	CPUs []int
}

// MaxCPUs bounds a launch's CPU list.
const MaxCPUs = 1024

// Bits of the launch's stdio word: which of the program's descriptors
// come with the message (a one-run entry only).
const (
	passStdin  = 1 << 0
	passStdout = 1 << 1
)

// passed returns the stdio word and the descriptors it announces.
func (l *Launch) passed() (uint64, []*os.File) {
	var mask uint64
	var files []*os.File
	if l.Stdin != nil {
		mask |= passStdin
		files = append(files, l.Stdin)
	}
	if l.Stdout != nil {
		mask |= passStdout
		files = append(files, l.Stdout)
	}
	return mask, files
}

// Pipes are a prepared run's stdin, stdout and stderr (the program's
// ends), sent with its launch as SCM_RIGHTS, in this order.
type Pipes struct {
	Stdin, Stdout, Stderr *os.File
}

// Prepare is how the entry of a reusable sandbox prepares its next run in
// namespaces of its own (fresh.c), before the run is asked for.
type Prepare struct {
	// Masked and Readonly are the /proc paths hidden and made read-only
	// again on the run's own /proc.
	Masked, Readonly []string
	// ShmOptions and PtsOptions are the mount options of the run's
	// /dev/shm (tmpfs) and /dev/pts (devpts) instances.
	ShmOptions, PtsOptions string
	// Net is the run's network namespace.
	Net NetMode
	// Filter is the compiled seccomp program, loaded by the run's PID 1
	// before it says it is ready.
	Filter []byte
}

// NetMode is the network namespace a prepared run gets (fresh.h's
// FRESH_NET_*).
type NetMode uint64

const (
	// NetNew: a new one, which the entry keeps once the run is over.
	NetNew NetMode = iota
	// NetShare: the sandbox's own, where an egress proxy listens (or a
	// session's, shared by its execs by design).
	NetShare
	// NetKeep: the one the entry kept, the last NetNew run's. Only for a
	// run of the same owner as that one.
	NetKeep
	// NetModes counts the modes.
	NetModes
)

// Marshal encodes p for the control socket.
func (p *Prepare) Marshal() []byte {
	var e encoder
	e.strings(p.Masked)
	e.strings(p.Readonly)
	e.bytes([]byte(p.ShmOptions))
	e.bytes([]byte(p.PtsOptions))
	e.u64(uint64(p.Net))
	e.bytes(p.Filter)
	return e.buf
}

// UnmarshalPrepare decodes what Marshal produced (the descriptors aside).
func UnmarshalPrepare(b []byte) (*Prepare, error) {
	d := decoder{buf: b}
	p := &Prepare{Masked: d.strings(), Readonly: d.strings(), ShmOptions: string(d.bytes()), PtsOptions: string(d.bytes())}
	p.Net = NetMode(d.u64())
	p.Filter = d.bytes()
	switch {
	case d.err != nil:
		return nil, d.err
	case p.Net >= NetModes:
		return nil, errors.New("entry: malformed network word")
	case len(d.buf) != 0:
		return nil, errors.New("entry: trailing bytes in prepare message")
	case len(p.Filter) == 0 || len(p.Filter)%8 != 0:
		return nil, errors.New("entry: malformed seccomp program")
	}
	return p, nil
}

// mountRights are the mounts that go with a prepare: both or none.
func mountRights(work, tmp *os.File) ([]*os.File, error) {
	switch {
	case work == nil && tmp == nil:
		return nil, nil
	case work == nil || tmp == nil:
		return nil, errors.New("entry: a prepared run gets both /work and /tmp, or keeps both")
	}
	return []*os.File{work, tmp}, nil
}

// Outcome is what the entry reports once the program has ended.
type Outcome struct {
	WaitStatus uint32
}

// frame is one message as it goes on the socket: type, length, payload.
func frame(t msgType, payload []byte) []byte {
	msg := make([]byte, 5, 5+len(payload))
	msg[0] = byte(t)
	binary.BigEndian.PutUint32(msg[1:], uint32(len(payload)))
	return append(msg, payload...)
}

func writeMsg(w io.Writer, t msgType, payload []byte) error {
	if _, err := w.Write(frame(t, payload)); err != nil {
		return fmt.Errorf("entry: write message: %w", err)
	}
	return nil
}

func readMsg(r *bufio.Reader) (msgType, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxMessage {
		return 0, nil, fmt.Errorf("entry: message of %d bytes exceeds %d", n, MaxMessage)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("entry: short message: %w", err)
	}
	return msgType(hdr[0]), buf, nil
}

type encoder struct{ buf []byte }

func (e *encoder) u64(v uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, v) }
func (e *encoder) bytes(b []byte) {
	e.u64(uint64(len(b)))
	e.buf = append(e.buf, b...)
}
func (e *encoder) strings(ss []string) {
	e.u64(uint64(len(ss)))
	for _, s := range ss {
		e.bytes([]byte(s))
	}
}

type decoder struct {
	buf []byte
	err error
}

var errTruncated = errors.New("entry: truncated message")

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.buf) < 8 {
		d.err = errTruncated
		return 0
	}
	v := binary.BigEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.u64()
	if d.err != nil || n > uint64(len(d.buf)) {
		d.err = errTruncated
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) strings() []string {
	n := d.u64()
	if d.err != nil || n > uint64(len(d.buf))/8 {
		d.err = errTruncated
		return nil
	}
	out := make([]string, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, string(d.bytes()))
	}
	return out
}

// Marshal encodes l for the control socket.
func (l *Launch) Marshal() []byte {
	var e encoder
	e.strings(l.Args)
	e.strings(l.Env)
	e.bytes([]byte(l.Dir))
	e.u64(uint64(len(l.Rlimits)))
	for _, r := range l.Rlimits {
		e.u64(uint64(r.Resource))
		e.u64(r.Cur)
		e.u64(r.Max)
	}
	e.bytes(l.Filter)
	e.u64(uint64(l.Rows))
	e.u64(uint64(l.Cols))
	mask, _ := l.passed()
	e.u64(mask)
	e.u64(uint64(len(l.CPUs)))
	for _, c := range l.CPUs {
		e.u64(uint64(c))
	}
	return e.buf
}

// UnmarshalLaunch decodes what Marshal produced.
func UnmarshalLaunch(b []byte) (*Launch, error) {
	d := decoder{buf: b}
	l := &Launch{Args: d.strings(), Env: d.strings(), Dir: string(d.bytes())}
	n := d.u64()
	if d.err == nil && n > uint64(len(d.buf))/24 {
		d.err = errTruncated
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		l.Rlimits = append(l.Rlimits, Rlimit{Resource: int(d.u64()), Cur: d.u64(), Max: d.u64()})
	}
	l.Filter = d.bytes()
	rows, cols := d.u64(), d.u64()
	mask := d.u64()
	n = d.u64()
	if d.err == nil && (n > MaxCPUs || n > uint64(len(d.buf))/8) {
		d.err = errTruncated
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		l.CPUs = append(l.CPUs, int(d.u64()))
	}
	if d.err != nil {
		return nil, d.err
	}
	if mask&^(passStdin|passStdout) != 0 {
		return nil, errors.New("entry: malformed stdio word")
	}
	if len(d.buf) != 0 {
		return nil, errors.New("entry: trailing bytes in launch message")
	}
	if len(l.Args) == 0 || l.Args[0] == "" {
		return nil, errors.New("entry: empty command")
	}
	if (rows == 0) != (cols == 0) || rows > 0xffff || cols > 0xffff {
		return nil, errors.New("entry: malformed terminal size")
	}
	l.Rows, l.Cols = uint16(rows), uint16(cols)
	return l, nil
}
