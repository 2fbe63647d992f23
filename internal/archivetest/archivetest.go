// Package archivetest makes archives for tests: tars, zips and gzips of
// entries that may be hostile (links, devices, names that climb out).
package archivetest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"testing"
)

// Entry is one member of an archive: a file, or another type of tar
// entry (Type, a tar type flag: a link to Link, a device, a directory).
type Entry struct {
	Name, Body string
	Type       byte
	Link       string
}

// Files makes regular files of name, content pairs.
func Files(kv ...string) []Entry {
	var out []Entry
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Entry{Name: kv[i], Body: kv[i+1]})
	}
	return out
}

// Tar is es as a tar.
func Tar(t testing.TB, es []Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.Name, Typeflag: typ, Linkname: e.Link, Mode: 0o644}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Zip is es as a zip, deflated; a symlink's content is its target.
func Zip(t testing.TB, es []Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range es {
		fh := &zip.FileHeader{Name: e.Name, Method: zip.Deflate}
		body := e.Body
		switch e.Type {
		case tar.TypeSymlink:
			fh.SetMode(os.ModeSymlink | 0o777)
			body = e.Link
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
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Gzip is data gzipped at the best compression (a bomb, for repeated
// bytes).
func Gzip(t testing.TB, data []byte) []byte {
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
