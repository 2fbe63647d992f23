package languages

import (
	"os"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// exchange is the pipes between an interactive test's program and its
// interactor. Directly, two pipes: the program's stdout is the
// interactor's stdin and the other way round, and the daemon holds no end
// once both sandboxes have theirs, so the bytes go from one program to the
// other with no copy (a copy through the daemon costs several times the
// round trip). When the transcript is recorded, each direction is two
// pipes with the daemon copying between them (relay), keeping what passed.
type exchange struct {
	// program and interactor are each side's stdin and stdout.
	program, interactor [2]*os.File
	releaseP, releaseI  sync.Once
	// relays copy the two directions when recording: fromProgram, the
	// program's output to the interactor; toProgram, the other way.
	fromProgram, toProgram *relay
}

// newExchange makes the pipes; with record, the relays too, each keeping
// at most keep bytes.
func newExchange(record bool, keep int64) (*exchange, error) {
	var files []*os.File
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	fail := func(err error) (*exchange, error) {
		closeAll(files)
		return nil, err
	}
	ex := &exchange{}
	pr, pw, err := pipe() // program → interactor
	if err != nil {
		return fail(err)
	}
	ir, iw, err := pipe() // interactor → program
	if err != nil {
		return fail(err)
	}
	if !record {
		ex.program = [2]*os.File{ir, pw}
		ex.interactor = [2]*os.File{pr, iw}
		return ex, nil
	}
	// With relays: the program writes pw, the daemon reads pr and writes
	// qw, the interactor reads qr; and so the other way.
	qr, qw, err := pipe()
	if err != nil {
		return fail(err)
	}
	sr, sw, err := pipe()
	if err != nil {
		return fail(err)
	}
	ex.program = [2]*os.File{sr, pw}
	ex.interactor = [2]*os.File{qr, iw}
	ex.fromProgram = startRelay(pr, qw, keep)
	ex.toProgram = startRelay(ir, sw, keep)
	return ex, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// releaseProgram closes the daemon's copies of the program's ends: once
// its sandbox has its own (runtime.Request.Started), or its run failed.
func (ex *exchange) releaseProgram() { ex.releaseP.Do(func() { closeAll(ex.program[:]) }) }

// releaseInteractor does the same for the interactor's ends.
func (ex *exchange) releaseInteractor() { ex.releaseI.Do(func() { closeAll(ex.interactor[:]) }) }

// close closes whatever the daemon still holds and waits for the relays.
func (ex *exchange) close() {
	ex.releaseProgram()
	ex.releaseInteractor()
	for _, r := range []*relay{ex.fromProgram, ex.toProgram} {
		if r != nil {
			r.stop()
		}
	}
}

// transcript is what the relays kept; call it after close.
func (ex *exchange) transcript() *api.Transcript {
	if ex.fromProgram == nil {
		return nil
	}
	from, fromCut := ex.fromProgram.kept()
	to, toCut := ex.toProgram.kept()
	t := &api.Transcript{Truncated: fromCut || toCut}
	t.FromProgram, t.FromProgramEncoding = api.EncodeOutput(from)
	t.ToProgram, t.ToProgramEncoding = api.EncodeOutput(to)
	return t
}

// relay copies one direction of a recorded exchange, keeping its first
// bytes. The end of its input closes its output (the reader sees the
// end); a reader gone closes its input (the writer gets EPIPE).
type relay struct {
	in, out *os.File
	keep    int64
	done    chan struct{}

	mu   sync.Mutex
	buf  []byte
	more bool // bytes passed beyond keep
}

func startRelay(in, out *os.File, keep int64) *relay {
	r := &relay{in: in, out: out, keep: keep, done: make(chan struct{})}
	go r.run()
	return r
}

func (r *relay) run() {
	defer close(r.done)
	defer r.out.Close()
	defer r.in.Close()
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.in.Read(chunk)
		if n > 0 {
			r.record(chunk[:n])
			if _, werr := r.out.Write(chunk[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *relay) record(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	room := r.keep - int64(len(r.buf))
	if int64(len(p)) > room {
		p, r.more = p[:max(room, 0)], true
	}
	r.buf = append(r.buf, p...)
}

// relayDrain is how long a relay may take to pass on what is left in
// its pipe once both programs are gone (it then reads the end at once).
const relayDrain = time.Second

// stop ends the relay, both programs being gone, and waits for it.
func (r *relay) stop() {
	select {
	case <-r.done:
		return
	case <-time.After(relayDrain):
	}
	// Closing unblocks a pending read or write (the files are in Go's
	// poller); the relay's own closes then fail harmlessly.
	_ = r.in.Close()
	_ = r.out.Close()
	<-r.done
}

func (r *relay) kept() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf), r.more
}
