package server

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/session"
)

// Detached execs (POST .../exec with "detach": true) run on after the
// call that started them; these endpoints list them, read their result,
// attach to their output and stdin over a WebSocket, and kill them.

func (s *Server) routeExecs() {
	s.mux.HandleFunc("GET /v1/sandboxes/{id}/execs", s.handleListExecs)
	s.mux.HandleFunc("GET /v1/sandboxes/{id}/execs/{exec_id}", s.handleGetExec)
	s.mux.HandleFunc("DELETE /v1/sandboxes/{id}/execs/{exec_id}", s.admitExecution(actionKill, s.handleKillExec))
	// An attach is admitted as an interactive run is: it counts against
	// its user's max_concurrent_per_user while it lasts, which bounds
	// the connections (and stdin messages) a user can hold.
	s.mux.HandleFunc("GET /v1/sandboxes/{id}/execs/{exec_id}/ws", s.admitExecution(actionAttach, s.handleAttachExec))
}

// detach starts a detached exec and answers 202 with it.
func (s *Server) detach(w http.ResponseWriter, r *http.Request, rec *execRecord, req *api.SandboxExecRequest) {
	id := r.PathValue("id")
	err := func() error {
		if req.Stream {
			return invalid(`"stream" and "detach" don't go together: attach to a detached exec with GET /v1/sandboxes/{id}/execs/{exec_id}/ws`)
		}
		if req.TTY {
			return invalid(`"tty" and "detach" don't go together: a detached exec has no terminal`)
		}
		sess, err := s.Sessions.Get(rec.user(), id)
		if err != nil {
			return err
		}
		x, err := s.execSpec(r, rec, sess, req)
		if err != nil {
			return err
		}
		untilSessionEnd(&x.Limits, req.Limits, sess.Expires())
		d, err := s.Sessions.Detach(r.Context(), rec.user(), id, x)
		if err != nil {
			return err
		}
		rec.noteDetached(sess.Spec().Image, sess.Spec().Language, x.Limits)
		go s.auditExecEnd(rec, id, d)
		writeJSON(w, http.StatusAccepted, execToAPI(d.Info()))
		return nil
	}()
	if err != nil {
		s.writeError(w, r, rec, err)
	}
}

// untilSessionEnd lets a detached exec live as long as its sandbox: the
// wall time it did not set is the sandbox's remaining life, and the CPU
// time it did not set is that life at the sandbox's full CPU quota. What
// it sets stays within the maximums, as for any exec.
func untilSessionEnd(l *limits.Set, asked *api.Limits, expires time.Time) {
	left := max(time.Until(expires), time.Millisecond)
	if asked == nil || asked.WallTimeMS == nil {
		l.WallTime = left
	}
	if asked == nil || asked.CPUTimeMS == nil {
		l.CPUTime = time.Duration(float64(left) * max(l.CPUs, 1))
	}
}

func (s *Server) handleListExecs(w http.ResponseWriter, r *http.Request) {
	list, err := s.Sessions.Execs(owner(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	out := api.ExecList{Execs: []api.Exec{}}
	for _, d := range list {
		out.Execs = append(out.Execs, execToAPI(d.Info()))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleGetExec answers an exec's state; with ?wait=1, once it has ended
// (or the client has gone).
func (s *Server) handleGetExec(w http.ResponseWriter, r *http.Request) {
	d, err := s.Sessions.DetachedExec(owner(r), r.PathValue("id"), r.PathValue("exec_id"))
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	switch r.URL.Query().Get("wait") {
	case "", "0", "false":
	case "1", "true":
		select {
		case <-d.Done():
		case <-r.Context().Done():
			return // nobody to answer
		}
		// Ended with its sandbox: the sandbox is gone, as every later
		// call about it will say.
		if _, err := s.Sessions.Get(owner(r), r.PathValue("id")); err != nil {
			s.writeError(w, r, nil, err)
			return
		}
	default:
		s.writeError(w, r, nil, invalid(`wait must be 1 or 0`))
		return
	}
	writeJSON(w, http.StatusOK, execToAPI(d.Info()))
}

// killWithin bounds how long DELETE waits for a killed exec to end: a
// SIGKILL and the sandbox's teardown take milliseconds.
const killWithin = 10 * time.Second

func (s *Server) handleKillExec(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	rec.noteSandbox(r.PathValue("id"), "", zeroLimits)
	d, err := s.Sessions.DetachedExec(rec.user(), r.PathValue("id"), r.PathValue("exec_id"))
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), killWithin)
		defer cancel()
		err = d.Kill(ctx)
	}
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAttachExec attaches a WebSocket to a detached exec: the output
// kept so far, then live output, as the streaming events; stdin messages
// go to the program; the result event and a normal close when it ends.
// The client leaving detaches it, and the exec runs on.
func (s *Server) handleAttachExec(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	rec.noteSandbox(r.PathValue("id"), "", zeroLimits)
	d, err := s.Sessions.DetachedExec(rec.user(), r.PathValue("id"), r.PathValue("exec_id"))
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	c.SetReadLimit(s.MaxBody)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	ws := &wsSession{c: c, ctx: ctx, cancel: cancel, control: d.Control()}
	go attachStdin(ws, d)
	go ws.keepAlive()
	stream := &eventStream{started: true, sink: func(line []byte) error {
		return c.Write(ctx, websocket.MessageText, line)
	}}
	if relayOutput(ctx, stream, d) {
		info := d.Info()
		_, gone := s.Sessions.Get(owner(r), r.PathValue("id"))
		switch {
		case gone != nil: // ended with its sandbox
			stream.fail(classify(gone))
		case info.Err != nil:
			stream.fail(classify(info.Err))
		default:
			stream.result(execToAPI(info))
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

// keptPiece is the most of the kept output one event carries.
const keptPiece = 32 << 10

// relayOutput sends what the exec kept, then its live output, until it
// ends (true) or the client goes (false).
func relayOutput(ctx context.Context, stream *eventStream, d *session.Detached) bool {
	a := d.Attach()
	defer a.Detach()
	stdout, stderr, flush := stream.outputs()
	for _, kept := range []struct {
		w    io.Writer
		data []byte
	}{{stdout, a.Stdout}, {stderr, a.Stderr}} {
		// In pieces, as the program's reads come: no message of
		// output_bytes (up to 16 MiB) for the client to take at once.
		for b := kept.data; len(b) > 0; b = b[min(len(b), keptPiece):] {
			_, _ = kept.w.Write(b[:min(len(b), keptPiece)])
		}
	}
	for {
		select {
		case ch, ok := <-a.C:
			if !ok {
				flush()
				select {
				case <-d.Done():
					return true
				case <-ctx.Done():
					return false
				}
			}
			if ch.Stderr {
				_, _ = stderr.Write(ch.Data)
			} else {
				_, _ = stdout.Write(ch.Data)
			}
		case <-ctx.Done():
			return false
		}
	}
}

// attachStdin feeds an attached client's stdin messages to the program.
// Unlike an interactive run, the client's leaving does not close the
// program's stdin: another client may attach and go on.
func attachStdin(ws *wsSession, d *session.Detached) {
	defer ws.cancel()
	for {
		m, err := ws.nextMessage()
		if err != nil {
			return
		}
		switch m.Type {
		case "stdin":
			// Waits while the program does not read, until the client
			// goes; fails once its stdin is closed or it has ended, and
			// the data is dropped.
			_ = d.WriteStdin(ws.ctx, []byte(m.Data))
		case "close_stdin":
			d.CloseStdin()
		case "signal":
			ws.control1(m) // a detached exec has no terminal to resize
		}
	}
}

func execToAPI(info session.ExecInfo) api.Exec {
	out := api.Exec{ID: info.ID, Cmd: info.Cmd, State: info.State, StartedAt: info.StartedAt.UTC(), Result: info.Result}
	if !info.EndedAt.IsZero() {
		t := info.EndedAt.UTC()
		out.EndedAt = &t
	}
	if info.Err != nil {
		ae := classify(info.Err)
		out.Error = &api.ErrorDetail{Code: ae.code, Message: ae.message}
	}
	return out
}

// actionExecEnd is the audit action of a detached exec's end.
const actionExecEnd = "sandbox.exec_end"

// auditExecEnd writes one line when a detached exec ends, with the
// starting call's caller and the exec's result: the call that started it
// was answered (and audited, status "detached") long before.
func (s *Server) auditExecEnd(rec *execRecord, sandbox string, d *session.Detached) {
	<-d.Done()
	info := d.Info()
	rec.mu.Lock()
	line := audit.Record{RequestID: rec.rec.RequestID, User: rec.rec.User, Auth: rec.rec.Auth, Transport: rec.rec.Transport,
		PeerUID: rec.rec.PeerUID, PeerPID: rec.rec.PeerPID, Remote: rec.rec.Remote, Image: rec.rec.Image, Language: rec.rec.Language,
		Limits: rec.rec.Limits}
	rec.mu.Unlock()
	line.Time, line.Action, line.SandboxID, line.ExecID, line.Files = time.Now().UTC(), actionExecEnd, sandbox, info.ID, []audit.File{}
	switch res := info.Result; {
	case res != nil:
		code, peak, wall, cpu := res.ExitCode, res.MemoryPeakBytes, res.WallTimeMS, res.CPUTimeMS
		line.ExitCode, line.MemoryPeakBytes, line.WallTimeMS, line.CPUTimeMS = &code, &peak, &wall, &cpu
		line.Status, line.LimitHit = string(res.Status), limitHit(res.Status)
		if info.State == api.ExecKilled {
			line.Status = api.ExecKilled
		}
	default:
		line.Status = string(api.StatusInternalError)
	}
	s.Audit.Write(&line)
}
