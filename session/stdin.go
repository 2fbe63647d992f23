package session

import (
	"context"
	"errors"
	"io"
	"sync"
)

// stdinPipe is a detached exec's stdin: attached clients' messages, one
// at a time, to the runtime's feeder. A writer waits until the program's
// side has taken its message, or until its own context ends: a client
// that goes while the program does not read leaves nothing behind (no
// goroutine, no message held), unlike an io.Pipe, whose Write can't be
// abandoned. The daemon holds at most the one message being fed.
type stdinPipe struct {
	msgs   chan []byte // unbuffered: a message is handed over, never queued
	closed chan struct{}
	ended  chan struct{}
	close1 sync.Once
	end1   sync.Once
	rest   []byte // the reader's: what is left of the message it took
}

// errStdinClosed: the program's stdin was closed, or the exec has ended.
var errStdinClosed = errors.New("the program's stdin is closed")

func newStdinPipe() *stdinPipe {
	return &stdinPipe{msgs: make(chan []byte), closed: make(chan struct{}), ended: make(chan struct{})}
}

// Read is the runtime's side: it gives EOF once stdin is closed (what a
// writer handed over before is read first) or the exec has ended.
func (p *stdinPipe) Read(b []byte) (int, error) {
	if len(p.rest) == 0 {
		select {
		case m := <-p.msgs:
			p.rest = m
		case <-p.closed:
			return 0, io.EOF
		case <-p.ended:
			return 0, io.EOF
		}
	}
	n := copy(b, p.rest)
	p.rest = p.rest[n:]
	return n, nil
}

// write hands data to the program's side once it reads, or fails when ctx
// ends, stdin is closed or the exec has ended.
func (p *stdinPipe) write(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	select {
	case p.msgs <- data:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closed:
		return errStdinClosed
	case <-p.ended:
		return errStdinClosed
	}
}

// close gives the program EOF (close_stdin).
func (p *stdinPipe) close() { p.close1.Do(func() { close(p.closed) }) }

// end fails every write from now on: the exec has ended.
func (p *stdinPipe) end() { p.end1.Do(func() { close(p.ended) }) }
