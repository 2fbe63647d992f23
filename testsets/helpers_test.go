package testsets

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"testing"
)

// entry is one member of an archive made for a test.
type entry struct {
	name string
	body string
	// typ is a tar type flag (0: a regular file); link its target.
	typ  byte
	link string
	// size, when set, is what the header claims instead of len(body).
	size int64
}

func files(kv ...string) []entry {
	var out []entry
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, entry{name: kv[i], body: kv[i+1]})
	}
	return out
}

func tarOf(t testing.TB, es []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: 0o644}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zipOf(t testing.TB, es []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range es {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		switch e.typ {
		case tar.TypeSymlink:
			fh.SetMode(os.ModeSymlink | 0o777)
		case tar.TypeDir:
			fh.SetMode(os.ModeDir | 0o755)
		case tar.TypeChar:
			fh.SetMode(os.ModeDevice | os.ModeCharDevice | 0o644)
		default:
			fh.SetMode(0o644)
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		body := e.body
		if e.typ == tar.TypeSymlink {
			body = e.link
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var testLimits = Limits{MaxBytes: 1 << 20, MaxTests: 20, MaxOwnerBytes: 3 << 20, MaxTotalBytes: 4 << 20}

func openStore(t testing.TB, l Limits) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
