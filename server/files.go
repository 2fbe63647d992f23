package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
)

// maxListEntries bounds one directory listing (413 beyond).
const maxListEntries = 10000

// The files API: every path goes to rootfs, which resolves it inside the
// session's /work and /tmp through openat2 and never follows a symlink out
// of them (rootfs/fileops.go). Here: ownership (Sessions.Use answers 404
// for another caller's sandbox), HTTP shapes and the audit line.

// fileParam is the path of a files call: the URL's remainder after
// /files/ ("" is /work), and ?follow=1.
func fileParam(r *http.Request) (path string, follow bool) {
	return r.PathValue("path"), r.URL.Query().Get("follow") == "1"
}

var zeroLimits limits.Set

func flag(r *http.Request, name string) bool { return r.URL.Query().Get(name) == "1" }

func (s *Server) handlePutFile(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	id, p := r.PathValue("id"), r.PathValue("path")
	rec.noteSandbox(id, "", zeroLimits)
	mode, err := parseMode(r.URL.Query().Get("mode"))
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	sess, done, err := s.Sessions.Use(rec.user(), id)
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	defer done()
	l := sess.Spec().Limits
	e, err := sess.Scratch().WriteFile(p, r.Body, mode, max(l.WorkBytes, l.TmpBytes))
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	rec.noteWrite(id, e.Path, e.Size)
	writeJSON(w, http.StatusCreated, entryToAPI(e))
}

// parseMode reads ?mode=0755: permission bits only.
func parseMode(text string) (fs.FileMode, error) {
	if text == "" {
		return 0, nil
	}
	m, err := strconv.ParseUint(text, 8, 32)
	if err != nil || m > 0o777 {
		return 0, invalid(fmt.Sprintf("mode %q: expected octal permission bits such as 0644", text))
	}
	return fs.FileMode(m), nil
}

func (s *Server) handleGetFile(w http.ResponseWriter, r *http.Request) {
	sess, done, err := s.Sessions.Use(owner(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	defer done()
	p, follow := fileParam(r)
	f, e, err := sess.Scratch().OpenFile(p, follow)
	if err == nil {
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(e.Size, 10))
		w.Header().Set("X-Sandboxd-Mode", fmt.Sprintf("%04o", e.Mode))
		w.WriteHeader(http.StatusOK)
		// The size at open: what the program writes meanwhile is not
		// waited for, and a file it shrinks ends the body short.
		_, _ = io.CopyN(w, f, e.Size)
		return
	}
	if !isDirErr(err) {
		s.writeError(w, r, nil, err)
		return
	}
	entries, err := sess.Scratch().List(p, flag(r, "recursive"), follow, maxListEntries)
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	out := api.FileList{Path: listedPath(p), Entries: make([]api.FileEntry, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, entryToAPI(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func isDirErr(err error) bool { return errors.Is(err, rootfs.ErrIsDir) }

// listedPath is the API path a listing is of.
func listedPath(p string) string {
	rel, err := rootfs.ScratchPath(p)
	if err != nil {
		return p
	}
	return rootfs.APIPath(rel)
}

func (s *Server) handleDeleteFile(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	id, p := r.PathValue("id"), r.PathValue("path")
	rec.noteSandbox(id, "", zeroLimits)
	sess, done, err := s.Sessions.Use(rec.user(), id)
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	defer done()
	if err := sess.Scratch().RemovePath(p, flag(r, "recursive")); err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	rec.noteWrite(id, listedPath(p), 0)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePutArchive(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	id, p := r.PathValue("id"), r.URL.Query().Get("path")
	rec.noteSandbox(id, "", zeroLimits)
	sess, done, err := s.Sessions.Use(rec.user(), id)
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	defer done()
	l := sess.Spec().Limits
	n, size, err := sess.Scratch().ExtractTar(p, r.Body, max(l.WorkBytes, l.TmpBytes))
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	rec.noteWrite(id, listedPath(p), size)
	writeJSON(w, http.StatusOK, api.ArchiveResult{Path: listedPath(p), Entries: n, Bytes: size})
}

func (s *Server) handleGetArchive(w http.ResponseWriter, r *http.Request) {
	sess, done, err := s.Sessions.Use(owner(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	defer done()
	p := r.URL.Query().Get("path")
	e, err := sess.Scratch().Stat(p, false)
	if err == nil && e.Type == rootfs.EntryOther {
		// A FIFO, device or socket alone would make an empty archive;
		// say so before the 200 (inside a directory such entries are
		// left out, as docs/api.md says).
		err = fmt.Errorf("%s: %w", e.Path, rootfs.ErrNotRegular)
	}
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	// Past the header an error can only cut the stream: the tar then
	// lacks its end-of-archive blocks, which a reader reports.
	if err := sess.Scratch().WriteTar(p, w); err != nil {
		s.log.Warn("streaming an archive", "sandbox", r.PathValue("id"), "err", err)
	}
}

func entryToAPI(e rootfs.Entry) api.FileEntry {
	return api.FileEntry{Path: e.Path, Name: e.Name, Type: string(e.Type), Size: e.Size,
		Mode: fmt.Sprintf("%04o", e.Mode.Perm()), ModTime: e.ModTime.UTC()}
}
